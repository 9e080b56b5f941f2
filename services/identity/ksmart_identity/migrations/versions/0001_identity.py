"""Users with their password hashes, and the keys that sign access tokens.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service = roles.of("identity")
    op.execute(
        """
        CREATE TABLE users (
            user_id uuid PRIMARY KEY,
            -- Stored lower-case so 'Clerk.Kochi' can't sit beside 'clerk.kochi'.
            username text NOT NULL UNIQUE CHECK (username <> '' AND username = lower(username)),
            display_name text NOT NULL,
            kind text NOT NULL
                CHECK (kind IN ('citizen', 'official', 'auditor', 'administrator')),
            roles text[] NOT NULL,
            -- A local-body code such as 'KL-EKM-KOC': an official's jurisdiction.
            local_body text NULL,
            -- argon2id, in the PHC string format argon2-cffi writes.
            password_hash text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );

        -- Private keys live here only when no key is given in the environment
        -- (a developer's machine); production passes KSMART_IDENTITY_SIGNING_KEY.
        CREATE TABLE signing_keys (
            kid text PRIMARY KEY,
            private_key_pem text NOT NULL,
            public_jwk jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            retired_at timestamptz NULL CHECK (retired_at IS NULL OR retired_at >= created_at)
        );

        REVOKE ALL ON users, signing_keys FROM PUBLIC;
        """
    )
    # Least privilege: users are never updated or deleted at this stage, and a
    # key is only ever retired (its key material never changes).
    op.execute(f'GRANT SELECT, INSERT ON users, signing_keys TO "{service}"')
    op.execute(f'GRANT UPDATE (retired_at) ON signing_keys TO "{service}"')


def downgrade(roles) -> None:
    op.execute("DROP TABLE signing_keys; DROP TABLE users")
