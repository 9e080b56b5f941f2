"""Relay throughput: events published per second with publisher confirms,
from the store to a quorum queue, against raw pika publishing the same
bodies with confirms to the same queue."""

from __future__ import annotations

import threading
import time
import uuid

import pika
import sqlalchemy as sa

from bench.append import DATA, METADATA
from bench.core import Progress, Ratio, Section, Settings
from ksmart_common.consumer import ConsumerTopology
from ksmart_common.envelope import NewEvent, file_stream_id
from ksmart_common.eventstore import EventStore
from ksmart_common.messaging import EVENT_CONTENT_TYPE, EVENTS_EXCHANGE, event_body, event_headers
from ksmart_common.relay import Relay
from tests.support.broker import fresh_vhost
from tests.support.databases import fresh_service_database

QUEUE = "bench.events"


def _fill(store: EventStore, count: int) -> None:
    written = 0
    while written < count:
        size = min(100, count - written)
        events = [NewEvent("ApplicationSubmitted", DATA) for _ in range(size)]
        store.append(file_stream_id(uuid.uuid4()), events, 0, METADATA)
        written += size


def _purge(amqp_uri: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    connection.channel().queue_purge(QUEUE)
    connection.close()


def relay_rate(relay_url: str, amqp_uri: str, count: int) -> float:
    relay = Relay(relay_url, amqp_uri, idle_poll_seconds=0.2)
    thread = threading.Thread(target=relay.run, daemon=True)
    started = time.perf_counter()
    thread.start()
    deadline = started + 600
    while relay.stats.checkpoint < count and time.perf_counter() < deadline:
        time.sleep(0.01)  # pacing the measurement, not synchronising a test
    elapsed = time.perf_counter() - started
    relay.stop()
    thread.join(30)
    if relay.stats.checkpoint < count:
        raise RuntimeError(f"relay stopped at {relay.stats.checkpoint} of {count}")
    return count / elapsed


def raw_pika_rate(store: EventStore, amqp_uri: str) -> float:
    messages = [
        (envelope.event_type, event_body(envelope), event_headers(envelope), envelope)
        for envelope in store.iter_all(0)
    ]
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    channel = connection.channel()
    channel.confirm_delivery()
    started = time.perf_counter()
    for routing_key, body, headers, envelope in messages:
        channel.basic_publish(
            EVENTS_EXCHANGE,
            routing_key,
            body,
            pika.BasicProperties(
                content_type=EVENT_CONTENT_TYPE,
                delivery_mode=pika.DeliveryMode.Persistent,
                message_id=str(envelope.event_id),
                type=envelope.event_type,
                timestamp=int(envelope.recorded_at.timestamp()),
                headers=headers,
            ),
        )
    elapsed = time.perf_counter() - started
    connection.close()
    return len(messages) / elapsed


def run(settings: Settings, progress: Progress) -> Section:
    count = settings.pick(15_000, 3_000)
    with fresh_service_database("applications") as database, fresh_vhost() as amqp_uri:
        ConsumerTopology(QUEUE, ("#",), (1000,)).declare(amqp_uri)
        engine = sa.create_engine(database.service_url)
        store = EventStore(engine)
        _fill(store, count)
        progress(f"relay: {count:,} events stored")
        ours = relay_rate(database.url_as("relay"), amqp_uri, count)
        progress(f"relay: ours {ours:,.0f} events/s published with confirms")
        _purge(amqp_uri)
        raw = raw_pika_rate(store, amqp_uri)
        progress(f"relay: raw pika {raw:,.0f} messages/s with confirms")
        store.close()
        engine.dispose()
    return Section(
        key="relay",
        title="Relay: events published per second, with publisher confirms",
        columns=["events", "relay ev/s", "raw pika msg/s", "relay / raw"],
        rows=[[count, round(ours), round(raw), round(ours / raw, 2)]],
        ratios=[
            Ratio(
                "relay vs raw pika (confirms, same bodies, quorum queue)",
                ours,
                raw,
                0.5,
                "events/s",
            )
        ],
        notes=[
            "Both publish one message at a time and wait for its confirm, to a "
            "quorum queue bound to the events exchange."
        ],
    )
