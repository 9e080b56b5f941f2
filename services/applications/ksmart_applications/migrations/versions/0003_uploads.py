"""Uploaded documents, before and after they are attached to a file.

The bytes live in document storage, addressed by their sha256; this table
records who uploaded which content, with its size and type as measured on
the content. An application may attach only its applicant's own uploads.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service = roles.of("applications")
    op.execute(
        """
        CREATE TABLE uploads (
            sha256 char(64) NOT NULL,
            uploaded_by text NOT NULL,
            media_type text NOT NULL,
            size_bytes bigint NOT NULL CHECK (size_bytes >= 1),
            filename text,
            uploaded_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (uploaded_by, sha256)
        );
        REVOKE ALL ON uploads FROM PUBLIC;
        """
    )
    op.execute(f'GRANT SELECT, INSERT ON uploads TO "{service}"')


def downgrade(roles) -> None:
    op.execute("DROP TABLE uploads")
