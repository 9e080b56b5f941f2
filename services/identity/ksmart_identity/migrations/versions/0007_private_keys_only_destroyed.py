"""A stored token key's private half may be destroyed, never rewritten.

Retiring a key clears its private half (0006), so this service's role may
update that column; without more, the same grant would let it put any key
in place of a stored one. The trigger allows the one change retiring makes,
to NULL, and refuses any other as a missing privilege.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    op.execute(
        """
        CREATE FUNCTION signing_keys_private_key_only_destroyed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.private_key_pem IS NOT NULL
               AND NEW.private_key_pem IS DISTINCT FROM OLD.private_key_pem THEN
                RAISE EXCEPTION 'a stored private key is never rewritten, only destroyed'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END
        $$;
        CREATE TRIGGER signing_keys_private_key_only_destroyed
            BEFORE UPDATE OF private_key_pem ON signing_keys
            FOR EACH ROW EXECUTE FUNCTION signing_keys_private_key_only_destroyed();
        """
    )


def downgrade(roles) -> None:
    op.execute(
        """
        DROP TRIGGER signing_keys_private_key_only_destroyed ON signing_keys;
        DROP FUNCTION signing_keys_private_key_only_destroyed();
        """
    )
