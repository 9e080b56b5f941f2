"""Each citizen's contact as learned from identity, so that a notice does not
cost a call to identity once the citizen is known.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service = roles.of("notifications")
    op.execute(
        """
        CREATE TABLE contacts (
            user_id uuid PRIMARY KEY,
            -- Channel to phone or email, as identity's contact() answered:
            -- the one the citizen signed up with, which never changes.
            destinations jsonb NOT NULL,
            learned_at timestamptz NOT NULL
        );

        REVOKE ALL ON contacts FROM PUBLIC;
        """
    )
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON contacts TO "{service}"')


def downgrade(roles) -> None:
    op.execute("DROP TABLE contacts")
