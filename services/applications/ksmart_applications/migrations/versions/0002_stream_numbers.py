"""Gapless numbers for new streams (file numbers such as
KL-EKM-KOC/BR/2026/000123), assigned in the appending transaction.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service = roles.of("applications")
    op.execute(
        """
        -- One row per number given: the primary key is what makes a stale
        -- guess at the next number collide instead of repeating a number,
        -- and max(number) per series (an index scan) is the last one given.
        CREATE TABLE stream_numbers (
            series text NOT NULL,
            number integer NOT NULL CHECK (number >= 1),
            stream_id text NOT NULL UNIQUE,
            PRIMARY KEY (series, number)
        );
        CREATE TRIGGER stream_numbers_refuse_update_delete
            BEFORE UPDATE OR DELETE ON stream_numbers
            FOR EACH ROW EXECUTE FUNCTION refuse_event_change();
        CREATE TRIGGER stream_numbers_refuse_truncate BEFORE TRUNCATE ON stream_numbers
            FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_change();
        REVOKE ALL ON stream_numbers FROM PUBLIC;
        """
    )
    op.execute(f'GRANT SELECT, INSERT ON stream_numbers TO "{service}"')


def downgrade(roles) -> None:
    op.execute("DROP TABLE stream_numbers")
