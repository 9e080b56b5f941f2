"""The file projection: one row per file, for inboxes and queries.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service = roles.of("workflow")
    op.execute(
        """
        CREATE TABLE files (
            file_id uuid PRIMARY KEY,
            stream_id text NOT NULL UNIQUE,
            service_code text NOT NULL,
            local_body text NOT NULL,
            applicant_id text NOT NULL,
            state text NOT NULL,
            waits_on text,
            version integer NOT NULL CHECK (version >= 1),
            submitted_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            -- The projector's whole state, so the next event continues from it.
            projected jsonb NOT NULL
        );
        -- An official's inbox: files of a local body waiting on a role, oldest first.
        CREATE INDEX files_inbox ON files (local_body, waits_on, submitted_at, file_id)
            WHERE waits_on IS NOT NULL;
        CREATE INDEX files_applicant ON files (applicant_id, submitted_at, file_id);
        REVOKE ALL ON files FROM PUBLIC;
        """
    )
    # No DELETE: a projection row is only ever created or moved forward.
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON files TO "{service}"')


def downgrade(roles) -> None:
    op.execute("DROP TABLE files")
