"""Files found by their number, for tracking a file without signing in.

A citizen's own files, newest first, need no new index: `files_applicant`
(applicant_id, submitted_at, file_id) is read backwards.

Rows projected before 0002 added the column have their number only in the
projected state: it is copied into the column here, so tracking finds every
file, not only those an event has touched since.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    op.execute(
        """
        UPDATE files SET file_number = projected->>'file_number'
            WHERE file_number IS NULL AND projected->>'file_number' IS NOT NULL;
        -- Tracking a file by its number (numbers are unique: the event store
        -- gives each once; the projection mirrors, it does not enforce).
        CREATE INDEX files_number ON files (file_number) WHERE file_number IS NOT NULL;
        """
    )


def downgrade(roles) -> None:
    op.execute("DROP INDEX files_number")
