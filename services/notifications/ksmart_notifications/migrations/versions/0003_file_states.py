"""Each file as this service last projected it, so that an event is told
from the file's state without replaying its stream.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service = roles.of("notifications")
    op.execute(
        """
        CREATE TABLE file_states (
            stream_id text PRIMARY KEY,
            -- The last event projected: the state is the file right after it.
            version integer NOT NULL CHECK (version >= 1),
            state jsonb NOT NULL,
            updated_at timestamptz NOT NULL
        );

        REVOKE ALL ON file_states FROM PUBLIC;
        """
    )
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON file_states TO "{service}"')


def downgrade(roles) -> None:
    op.execute("DROP TABLE file_states")
