"""Time limits and assignment in the file projection: inboxes ordered by
due time, overdue files found by the escalation timer, counts per office.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    op.execute(
        """
        ALTER TABLE files
            ADD COLUMN file_number text NULL,
            ADD COLUMN state_due_at timestamptz NULL,
            ADD COLUMN file_due_at timestamptz NULL,
            ADD COLUMN assigned_to text NULL,
            ADD COLUMN escalated boolean NOT NULL DEFAULT false;
        -- An official's inbox, soonest due first.
        CREATE INDEX files_inbox_due ON files (local_body, waits_on, state_due_at, file_id)
            WHERE waits_on IS NOT NULL;
        -- What the escalation timer looks for: open states past their time.
        CREATE INDEX files_overdue ON files (state_due_at)
            WHERE state_due_at IS NOT NULL AND NOT escalated;
        """
    )


def downgrade(roles) -> None:
    op.execute(
        """
        DROP INDEX files_overdue; DROP INDEX files_inbox_due;
        ALTER TABLE files DROP COLUMN file_number, DROP COLUMN state_due_at,
            DROP COLUMN file_due_at, DROP COLUMN assigned_to, DROP COLUMN escalated;
        """
    )
