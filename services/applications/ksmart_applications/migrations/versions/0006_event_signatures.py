"""Signed events: each event's signature by the store's writer, and the
public halves of the keys that sign them.

events.signature is NULL for the events stored before this change (an
auditor accepts an unsigned event only before the log's first signed one).
event_keys holds public halves only: the private key lives in the
service's Secret (KSMART_EVENT_SIGNING_KEY), never here, and a CHECK keeps
it so. A key is trusted only with the deployment root's endorsement
(ksmart_common.key_anchor, purpose "event"); the role may record a key's
public half and set its endorsement (every reader checks it against the
pinned root), nothing else.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from ksmart_applications.event_keys import EVENT_KEYS_DDL

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service = roles.of("applications")
    op.execute("ALTER TABLE events ADD COLUMN signature text NULL")
    op.execute(EVENT_KEYS_DDL)
    op.execute(f'GRANT SELECT, INSERT, UPDATE (endorsement) ON event_keys TO "{service}"')


def downgrade(roles) -> None:
    op.execute("DROP TABLE event_keys")
    op.execute("ALTER TABLE events DROP COLUMN signature")
