"""The event store: an append-only table that protects itself.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service, relay = roles.of("applications"), roles.of("relay")
    op.execute(
        """
        CREATE TABLE events (
            global_position bigint PRIMARY KEY CHECK (global_position >= 1),
            event_id uuid NOT NULL UNIQUE,
            stream_id text NOT NULL,
            stream_version integer NOT NULL CHECK (stream_version >= 1),
            event_type text NOT NULL,
            schema_version integer NOT NULL CHECK (schema_version >= 1),
            data json NOT NULL,
            metadata json NOT NULL,
            recorded_at timestamptz NOT NULL,
            prev_hash char(64) NOT NULL,
            hash char(64) NOT NULL,
            UNIQUE (stream_id, stream_version)
        );

        -- Rows can't be changed: not by the service, not by a mistake.
        CREATE FUNCTION refuse_event_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'events are immutable: % on % is refused', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        CREATE TRIGGER events_refuse_update_delete BEFORE UPDATE OR DELETE ON events
            FOR EACH ROW EXECUTE FUNCTION refuse_event_change();
        CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
            FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_change();

        -- The relay's place in the log (the table is its own outbox).
        CREATE TABLE relay_checkpoints (
            relay_name text PRIMARY KEY,
            position bigint NOT NULL CHECK (position >= 0),
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        REVOKE ALL ON events, relay_checkpoints FROM PUBLIC;
        """
    )
    op.execute(f'GRANT SELECT, INSERT ON events TO "{service}"')
    op.execute(f'GRANT SELECT ON events TO "{relay}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON relay_checkpoints TO "{relay}"')


def downgrade(roles) -> None:
    op.execute("DROP TABLE relay_checkpoints; DROP TABLE events")
    op.execute("DROP FUNCTION refuse_event_change()")
