"""Every refresh token a session has rotated out, not only the last one, so
an old copy coming back is always recognised (and ends the session).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service = roles.of("identity")
    op.execute(
        """
        CREATE TABLE retired_refresh_tokens (
            refresh_hash char(64) PRIMARY KEY,
            session_id uuid NOT NULL REFERENCES sessions (session_id),
            retired_at timestamptz NOT NULL
        );
        INSERT INTO retired_refresh_tokens (refresh_hash, session_id, retired_at)
            SELECT previous_refresh_hash, session_id, refreshed_at FROM sessions
            WHERE previous_refresh_hash IS NOT NULL;
        ALTER TABLE sessions DROP COLUMN previous_refresh_hash;
        REVOKE ALL ON retired_refresh_tokens FROM PUBLIC;
        """
    )
    op.execute(f'GRANT SELECT, INSERT ON retired_refresh_tokens TO "{service}"')


def downgrade(roles) -> None:
    op.execute(
        """
        ALTER TABLE sessions ADD COLUMN previous_refresh_hash char(64) NULL;
        DROP TABLE retired_refresh_tokens;
        """
    )
