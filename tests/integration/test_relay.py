"""The relay publishes every stored event, in order, at least once: also
across a broker outage that submissions never notice."""

import json
import threading
import uuid
from urllib.parse import urlsplit, urlunsplit

import pika

from ksmart_common.envelope import NewEvent, file_stream_id
from ksmart_common.eventstore import EventStore
from ksmart_common.messaging import EVENTS_EXCHANGE
from ksmart_common.relay import Relay
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for

METADATA = {"actor_id": "u-1", "actor_roles": ["citizen"], "correlation_id": "c-1"}


def _via(amqp_uri: str, port: int) -> str:
    parts = urlsplit(amqp_uri)
    return urlunsplit(parts._replace(netloc=f"guest:guest@127.0.0.1:{port}"))


class Collector:
    """A plain queue bound to every event type, read with basic_get."""

    def __init__(self, amqp_uri: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
        self.queue = f"test-{uuid.uuid4().hex[:8]}"
        self.channel.queue_declare(self.queue, durable=True)
        self.channel.queue_bind(self.queue, EVENTS_EXCHANGE, routing_key="#")
        self.received: list[dict] = []

    def drain(self) -> list[dict]:
        while True:
            method, properties, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.received
            assert properties.delivery_mode == 2 and properties.content_type == "application/json"
            self.received.append(json.loads(body))

    def close(self) -> None:
        self.connection.close()


def _start(relay: Relay) -> threading.Thread:
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    return thread


def _append(store: EventStore, count: int) -> None:
    for _ in range(count):
        store.append(
            file_stream_id(uuid.uuid4()), [NewEvent("ApplicationSubmitted", {})], 0, METADATA
        )


def test_every_event_is_published_in_position_order(store, applications_db, amqp_uri):
    collector = Collector(amqp_uri)
    _append(store, 5)  # stored before the relay starts: the backlog
    relay = Relay(applications_db.url_as("relay"), amqp_uri, idle_poll_seconds=30)
    thread = _start(relay)
    try:
        _append(store, 20)  # woken by NOTIFY: the idle poll is far longer than the wait
        received = wait_for(
            lambda: len(collector.drain()) >= 25 and collector.received,
            timeout=20,
            message="25 events",
        )
        assert [event["global_position"] for event in received] == list(range(1, 26))
        assert received[0]["event_type"] == "ApplicationSubmitted"
        wait_for(lambda: relay.stats.checkpoint == 25, message="checkpoint at 25")
    finally:
        relay.stop()
        thread.join(10)
        collector.close()


def test_broker_outage_delays_publication_and_loses_nothing(store, applications_db, amqp_uri):
    proxy = TcpProxy(5672).start()
    collector = Collector(amqp_uri)
    relay = Relay(
        applications_db.url_as("relay"),
        _via(amqp_uri, proxy.port),
        idle_poll_seconds=0.5,
        max_backoff_seconds=0.5,
    )
    thread = _start(relay)
    try:
        _append(store, 3)
        wait_for(lambda: len(collector.drain()) == 3, message="first 3 events")

        proxy.cut()
        _append(store, 10)  # submissions go on while the broker is out of reach
        wait_for(lambda: relay.stats.broker_failures > 0, message="relay to notice the outage")
        assert store.last_position() == 13
        assert relay.stats.checkpoint < 13

        proxy.restore()
        received = wait_for(
            lambda: len(collector.drain()) >= 13 and collector.received,
            timeout=30,
            message="backlog after the outage",
        )
        positions = [event["global_position"] for event in received]
        assert sorted(set(positions)) == list(range(1, 14))  # nothing lost
        wait_for(lambda: relay.stats.checkpoint == 13, message="checkpoint at 13")
    finally:
        relay.stop()
        thread.join(10)
        proxy.cut()
        collector.close()


def test_a_second_relay_waits_while_the_first_leads(store, applications_db, amqp_uri):
    collector = Collector(amqp_uri)
    first = Relay(applications_db.url_as("relay"), amqp_uri, idle_poll_seconds=0.2)
    second = Relay(applications_db.url_as("relay"), amqp_uri, idle_poll_seconds=0.2)
    threads = [_start(first), _start(second)]
    try:
        _append(store, 10)
        wait_for(lambda: len(collector.drain()) >= 10, message="10 events")
        assert sorted(e["global_position"] for e in collector.received) == list(range(1, 11))
        assert sorted([first.stats.published, second.stats.published]) == [0, 10]
    finally:
        first.stop()
        second.stop()
        for thread in threads:
            thread.join(10)
        collector.close()
