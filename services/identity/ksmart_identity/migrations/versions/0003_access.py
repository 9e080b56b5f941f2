"""Access: one-time codes for citizens, sessions with refresh tokens, and
password lockout for officials.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service = roles.of("identity")
    op.execute(
        """
        -- A citizen signs in with a one-time code and has no password; their
        -- username is their phone number (E.164) or email address.
        ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
        ALTER TABLE users
            ADD COLUMN failed_sign_ins integer NOT NULL DEFAULT 0 CHECK (failed_sign_ins >= 0),
            ADD COLUMN locked_until timestamptz NULL,
            ADD COLUMN disabled_at timestamptz NULL,
            -- An official's wards within their local body (empty: all of it).
            ADD COLUMN wards integer[] NOT NULL DEFAULT '{}',
            ADD COLUMN language text NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'ml'));

        CREATE TABLE otp_challenges (
            challenge_id uuid PRIMARY KEY,
            destination text NOT NULL,
            channel text NOT NULL CHECK (channel IN ('sms', 'email')),
            -- argon2 of the code: never the code itself.
            code_hash text NOT NULL,
            client_address text NOT NULL,
            created_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            failed_attempts integer NOT NULL DEFAULT 0,
            consumed_at timestamptz NULL,
            voided_at timestamptz NULL
        );
        -- Rate limits count recent challenges per destination and per address.
        CREATE INDEX otp_challenges_destination ON otp_challenges (destination, created_at);
        CREATE INDEX otp_challenges_client ON otp_challenges (client_address, created_at);

        -- A session is one sign-in: its refresh token (stored as a hash) is
        -- rotated on every use; access tokens name it (the `sid` claim), so
        -- revoking the session revokes them too.
        CREATE TABLE sessions (
            session_id uuid PRIMARY KEY,
            user_id uuid NOT NULL REFERENCES users (user_id),
            refresh_hash char(64) NOT NULL UNIQUE,
            previous_refresh_hash char(64) NULL,
            created_at timestamptz NOT NULL,
            refreshed_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            revoked_at timestamptz NULL,
            revoked_reason text NULL
        );
        CREATE INDEX sessions_previous_refresh ON sessions (previous_refresh_hash);
        CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
        CREATE INDEX sessions_user ON sessions (user_id);

        REVOKE ALL ON otp_challenges, sessions FROM PUBLIC;
        """
    )
    # Least privilege: only the columns that change are updatable; nothing
    # is ever deleted (an expired challenge or session is history).
    op.execute(
        f"GRANT UPDATE (failed_sign_ins, locked_until, disabled_at, roles, local_body, wards,"
        f' display_name, language) ON users TO "{service}"'
    )
    op.execute(f'GRANT SELECT, INSERT ON otp_challenges, sessions TO "{service}"')
    op.execute(
        f'GRANT UPDATE (failed_attempts, consumed_at, voided_at) ON otp_challenges TO "{service}"'
    )
    op.execute(
        f"GRANT UPDATE (refresh_hash, previous_refresh_hash, refreshed_at, revoked_at,"
        f' revoked_reason) ON sessions TO "{service}"'
    )


def downgrade(roles) -> None:
    op.execute(
        """
        DROP TABLE sessions; DROP TABLE otp_challenges;
        ALTER TABLE users DROP COLUMN failed_sign_ins, DROP COLUMN locked_until,
            DROP COLUMN disabled_at, DROP COLUMN wards, DROP COLUMN language;
        """
    )
