"""The relay: the events table is its own outbox.

It reads events after its checkpoint in position order, publishes each to the
`applications.events` exchange with publisher confirms, and only then moves
its checkpoint. Hence an event stored is published at least once:
- a broker outage stops publication, not submissions; the backlog goes out,
  in order, when the broker returns;
- a relay killed between publishing and checkpointing republishes a few
  events on restart; consumers drop them as duplicates by stream version.

It wakes on NOTIFY from each append (no busy polling) and also polls every
`idle_poll_seconds` in case a notification was missed while it reconnected.
Several replicas may run: a session advisory lock makes one the leader, and
the others wait to take over if its connection drops.
"""

from __future__ import annotations

import select
import threading
from dataclasses import dataclass

import pika
import psycopg2
import sqlalchemy as sa
from pika.exceptions import AMQPError

from ksmart_common import metrics
from ksmart_common.appender import NOTIFY_CHANNEL
from ksmart_common.eventstore import EventStore
from ksmart_common.logging import get_logger
from ksmart_common.messaging import EVENT_CONTENT_TYPE, EVENTS_EXCHANGE, event_body, event_headers

log = get_logger(__name__)

RELAY_LEADER_LOCK = 0x72656C6179  # "relay"
DEFAULT_RELAY_NAME = "applications.events"


@dataclass
class RelayStats:
    published: int = 0
    checkpoint: int = 0
    broker_failures: int = 0


class Relay:
    def __init__(
        self,
        database_url: str,
        amqp_uri: str,
        name: str = DEFAULT_RELAY_NAME,
        page_size: int = 500,
        idle_poll_seconds: float = 5.0,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self.engine = sa.create_engine(database_url, pool_size=2, pool_pre_ping=True)
        # The listener holds the leader lock for its session's lifetime, so it
        # must really close when we drop it: never return it to a pool.
        self.listen_engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        self.store = EventStore(self.engine)
        self.amqp_uri = amqp_uri
        self.name = name
        self.page_size = page_size
        self.idle_poll_seconds = idle_poll_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.stats = RelayStats()
        self.stopping = threading.Event()
        self._channel = None
        self._connection = None

    # -- the loop ----------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        backoff = 0.1
        while not self.stopping.is_set():
            listener = None
            try:
                listener = self._listen()
                self._wait_for_leadership(listener)
                log.info("relay leading", relay=self.name)
                self._lead(listener)
                backoff = 0.1
            except (AMQPError, OSError) as error:
                self.stats.broker_failures += 1
                log.warning("broker unavailable; events wait in the store", error=repr(error))
            except (sa.exc.DBAPIError, psycopg2.Error) as error:
                # The listener is a raw psycopg2 connection: its errors come unwrapped.
                log.warning("database unavailable", error=repr(error))
            finally:
                self._close_broker()
                if listener is not None:
                    listener.close()
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff_seconds)
        self.engine.dispose()

    def _listen(self):
        """A dedicated connection that holds the leader lock and gets NOTIFYs."""
        raw = self.listen_engine.raw_connection()
        connection = raw.driver_connection
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return raw

    def _wait_for_leadership(self, listener) -> None:
        connection = listener.driver_connection
        while not self.stopping.is_set():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LEADER_LOCK,))
                if cursor.fetchone()[0]:
                    return
            self._wait_for_notify(connection)

    def _lead(self, listener) -> None:
        connection = listener.driver_connection
        checkpoint = self._load_checkpoint()
        self._connect_broker()
        while not self.stopping.is_set():
            page = self.store.read_all(checkpoint, self.page_size)
            if not page:
                self._wait_for_notify(connection)
                continue
            for envelope in page:
                self._publish(envelope)
            checkpoint = page[-1].global_position
            self._save_checkpoint(checkpoint)
            metrics.EVENTS_PUBLISHED.inc(len(page))
            metrics.RELAY_POSITION.set(checkpoint)

    def _wait_for_notify(self, connection) -> None:
        readable, _, _ = select.select([connection], [], [], self.idle_poll_seconds)
        if readable:
            connection.poll()
            connection.notifies.clear()
        if self._connection is not None:
            self._connection.process_data_events(0)  # answer broker heartbeats

    # -- checkpoint ----------------------------------------------------------

    def _load_checkpoint(self) -> int:
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO relay_checkpoints (relay_name, position) VALUES (:n, 0)"
                    " ON CONFLICT (relay_name) DO NOTHING"
                ),
                {"n": self.name},
            )
            position = conn.execute(
                sa.text("SELECT position FROM relay_checkpoints WHERE relay_name = :n"),
                {"n": self.name},
            ).scalar_one()
        self.stats.checkpoint = position
        return position

    def _save_checkpoint(self, position: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE relay_checkpoints SET position = :p, updated_at = now()"
                    " WHERE relay_name = :n"
                ),
                {"p": position, "n": self.name},
            )
        self.stats.checkpoint = position

    # -- broker --------------------------------------------------------------

    def _connect_broker(self) -> None:
        parameters = pika.URLParameters(self.amqp_uri)
        parameters.heartbeat = 30
        parameters.blocked_connection_timeout = 30
        self._connection = pika.BlockingConnection(parameters)
        self._channel = self._connection.channel()
        self._channel.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
        self._channel.confirm_delivery()

    def _publish(self, envelope) -> None:
        # With confirms on, basic_publish returns once the broker has taken
        # responsibility for the message, and raises if it refuses it.
        self._channel.basic_publish(
            exchange=EVENTS_EXCHANGE,
            routing_key=envelope.event_type,
            body=event_body(envelope),
            properties=pika.BasicProperties(
                content_type=EVENT_CONTENT_TYPE,
                delivery_mode=pika.DeliveryMode.Persistent,
                message_id=str(envelope.event_id),
                type=envelope.event_type,
                timestamp=int(envelope.recorded_at.timestamp()),
                headers=event_headers(envelope),
            ),
        )
        self.stats.published += 1

    def _close_broker(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except AMQPError:
                pass
