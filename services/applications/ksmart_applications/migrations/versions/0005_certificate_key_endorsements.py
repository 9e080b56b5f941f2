"""Certificate keys anchored in the deployment's key root.

Each key may carry the root's endorsement (ksmart_common.key_anchor): only an
endorsed key is published and trusted, because this service's own role can
insert rows into certificate_keys. The role may set an endorsement (every
reader checks it against the pinned root) and nothing else of a key.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service = roles.of("applications")
    op.execute("ALTER TABLE certificate_keys ADD COLUMN endorsement text NULL")
    op.execute(f'GRANT UPDATE (endorsement) ON certificate_keys TO "{service}"')


def downgrade(roles) -> None:
    op.execute("ALTER TABLE certificate_keys DROP COLUMN endorsement")
