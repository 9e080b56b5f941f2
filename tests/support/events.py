"""Listening to a service's nameko events, as the notifications service will:
an exclusive queue bound to the service's event exchange."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pika


class EventTap:
    """Messages of one event type from `<service>.events`, from the moment
    the tap is opened."""

    def __init__(self, amqp_uri: str, service: str, event_type: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        self.channel = self.connection.channel()
        exchange = f"{service}.events"
        # Declared as nameko declares it, so whichever comes first, both agree.
        self.channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, exchange, routing_key=event_type)

    def next(
        self, matching: Callable[[dict[str, Any]], bool] = lambda _: True, timeout: float = 20.0
    ) -> dict[str, Any]:
        """The next message matching; AssertionError at the deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, _, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                self.connection.process_data_events(time_limit=0.05)
                continue
            payload = json.loads(body)
            if matching(payload):
                return payload
        raise AssertionError(f"no matching event on {self.queue} within {timeout} s")

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> EventTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
