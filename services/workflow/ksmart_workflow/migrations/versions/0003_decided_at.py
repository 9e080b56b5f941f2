"""When each file was decided, for statistics.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    op.execute(
        """
        ALTER TABLE files ADD COLUMN decided_at timestamptz NULL;
        CREATE INDEX files_statistics ON files (local_body, service_code);
        """
    )


def downgrade(roles) -> None:
    op.execute("DROP INDEX files_statistics; ALTER TABLE files DROP COLUMN decided_at")
