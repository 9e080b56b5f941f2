"""Messages (the delivery log, the outbox of the delivery worker and the
in-app feed in one table) and each citizen's preferences.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service = roles.of("notifications")
    op.execute(
        """
        CREATE TABLE messages (
            message_id uuid PRIMARY KEY,
            -- What the message tells of: a stored event's id, or a one-time
            -- code's challenge id. One message per source and channel, so a
            -- duplicate event can never send a message twice.
            source_id text NOT NULL,
            channel text NOT NULL CHECK (channel IN ('sms', 'email', 'in_app')),
            UNIQUE (source_id, channel),
            recipient_id uuid NULL,
            -- The phone or email it goes to (NULL in the in-app feed); shown
            -- masked, searched whole.
            destination text NULL CHECK ((channel = 'in_app') = (destination IS NULL)),
            template text NOT NULL,
            language text NOT NULL CHECK (language IN ('en', 'ml')),
            urgent boolean NOT NULL,
            statutory boolean NOT NULL,
            file_id uuid NULL,
            file_number text NULL,
            -- What was said. NULL for a one-time code: a code is never stored.
            subject text NULL,
            body text NULL,
            status text NOT NULL CHECK (status IN (
                'scheduled',   -- held for the recipient's quiet hours until not_before
                'queued',      -- waiting for the delivery worker
                'retrying',    -- an attempt failed; the next waits in a retry queue
                'sent',        -- the provider took it
                'delivered',   -- the provider confirmed delivery (or stored in the feed)
                'undelivered', -- the provider reported that it could not deliver it
                'failed',      -- refused for good (a bad number, a rejected address)
                'dead'         -- retries used up: in the dead-letter queue
            )),
            not_before timestamptz NULL,
            attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            last_error text NULL,
            provider_message_id text NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            sent_at timestamptz NULL,
            delivered_at timestamptz NULL,
            read_at timestamptz NULL CHECK (read_at IS NULL OR channel = 'in_app')
        );
        -- The citizen's feed, newest first, and its unread count.
        CREATE INDEX messages_feed ON messages (recipient_id, created_at DESC, message_id DESC)
            WHERE channel = 'in_app';
        CREATE INDEX messages_unread ON messages (recipient_id)
            WHERE channel = 'in_app' AND read_at IS NULL;
        -- The administrator's search: by destination, file number or person.
        CREATE INDEX messages_destination ON messages (destination, created_at DESC)
            WHERE destination IS NOT NULL;
        CREATE INDEX messages_file_number ON messages (file_number, created_at DESC)
            WHERE file_number IS NOT NULL;
        CREATE INDEX messages_recipient ON messages (recipient_id, created_at DESC);
        -- The sweeper: held messages coming due, and queued ones gone quiet.
        CREATE INDEX messages_pending ON messages (status, updated_at)
            WHERE status IN ('scheduled', 'queued');
        CREATE INDEX messages_by_status ON messages (status, created_at DESC);
        -- Delivery receipts name the provider's id. Not unique: a provider
        -- reusing an id must not make a sent message fail to be recorded
        -- (and so be sent again).
        CREATE INDEX messages_provider_id ON messages (channel, provider_message_id)
            WHERE provider_message_id IS NOT NULL;

        CREATE TABLE preferences (
            user_id uuid PRIMARY KEY,
            language text NOT NULL CHECK (language IN ('en', 'ml')),
            -- The outside channels wanted (the in-app feed always has everything).
            channels text[] NOT NULL CHECK (channels <@ ARRAY['sms', 'email']::text[]),
            -- Informational messages (progress, receipts) may be turned off;
            -- statutory notices may not.
            informational boolean NOT NULL,
            -- Quiet hours in the citizen's own time zone: non-urgent messages
            -- wait until they end.
            quiet_start time NULL,
            quiet_end time NULL,
            CHECK ((quiet_start IS NULL) = (quiet_end IS NULL)),
            time_zone text NOT NULL,
            updated_at timestamptz NOT NULL
        );

        REVOKE ALL ON messages, preferences FROM PUBLIC;
        """
    )
    # A message is never deleted: the log is what helps a citizen whose
    # message did not arrive.
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON messages, preferences TO "{service}"')


def downgrade(roles) -> None:
    op.execute("DROP TABLE preferences; DROP TABLE messages")
