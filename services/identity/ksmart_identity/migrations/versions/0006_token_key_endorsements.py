"""Token keys anchored in the deployment's key root, and destroyed when retired.

Each key may carry the root's endorsement (ksmart_common.key_anchor): only an
endorsed key is published and trusted, because this service's own role can
insert rows. A retired key holds no private half: retiring destroys it (the
check makes the database refuse a retired key that still has one), and the
keys retired before this revision lose theirs here.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service = roles.of("identity")
    op.execute(
        """
        ALTER TABLE signing_keys ADD COLUMN endorsement text NULL;
        ALTER TABLE signing_keys ALTER COLUMN private_key_pem DROP NOT NULL;
        UPDATE signing_keys SET private_key_pem = NULL WHERE retired_at IS NOT NULL;
        ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_retired_key_destroyed
            CHECK (retired_at IS NULL OR private_key_pem IS NULL);
        """
    )
    op.execute(
        f'GRANT UPDATE (retired_at, private_key_pem, endorsement) ON signing_keys TO "{service}"'
    )


def downgrade(roles) -> None:
    op.execute(
        """
        ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_retired_key_destroyed;
        DELETE FROM signing_keys WHERE private_key_pem IS NULL;
        ALTER TABLE signing_keys ALTER COLUMN private_key_pem SET NOT NULL;
        ALTER TABLE signing_keys DROP COLUMN endorsement;
        """
    )
