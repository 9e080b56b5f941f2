"""The keys that sign certificates (public halves kept for ever, so a
certificate verifies for as long as it is valid, and longer).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from ksmart_applications.certificate_keys import CERTIFICATE_KEYS_DDL

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service = roles.of("applications")
    op.execute(CERTIFICATE_KEYS_DDL)
    op.execute("REVOKE ALL ON certificate_keys FROM PUBLIC")
    op.execute(f'GRANT SELECT, INSERT ON certificate_keys TO "{service}"')


def downgrade(roles) -> None:
    op.execute("DROP TABLE certificate_keys")
