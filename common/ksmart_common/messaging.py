"""RabbitMQ names and message shapes shared by the relay and every consumer.

Events go to one topic exchange, routing key = event type, body = the
envelope as JSON, persistent. The exchange is declared identically by the
relay (pika) and by nameko consumers (kombu), so whoever starts first wins
nothing and breaks nothing.
"""

from __future__ import annotations

import json
from typing import Any

from ksmart_common.envelope import Envelope, to_json

EVENTS_EXCHANGE = "applications.events"
EVENT_CONTENT_TYPE = "application/json"


def event_body(envelope: Envelope) -> bytes:
    return json.dumps(to_json(envelope), ensure_ascii=False, separators=(",", ":")).encode()


def event_headers(envelope: Envelope) -> dict[str, Any]:
    headers = {
        "stream_id": envelope.stream_id,
        "stream_version": envelope.stream_version,
        "global_position": envelope.global_position,
    }
    # nameko reads headers prefixed "nameko." into the worker's context data,
    # so the correlation id follows the event into every consumer's logs.
    correlation_id = envelope.metadata.get("correlation_id")
    if correlation_id:
        headers["nameko.correlation_id"] = correlation_id
    return headers


# The identity service's events (nameko events: exchange "<service>.events").
IDENTITY_EVENTS_EXCHANGE = "identity.events"
OTP_REQUESTED = "OtpRequested"
# Where one-time codes wait for the notifications service. A code is useless
# once expired, so the queue drops it then (never dead-lettered: a code must
# not linger anywhere). It exists from `setup` on, so a code published before
# the notifications service first starts is kept, and the identity service
# publishes with `mandatory`: a code with nowhere to go is an error, not a
# silent loss.
OTP_QUEUE = "notifications.otp"


def declare_otp_queue(amqp_uri: str, code_lifetime_seconds: int) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        # Declared as nameko declares its event exchanges.
        channel.exchange_declare(IDENTITY_EVENTS_EXCHANGE, exchange_type="topic", durable=True)
        channel.queue_declare(
            OTP_QUEUE,
            durable=True,
            arguments={"x-message-ttl": code_lifetime_seconds * 1000},
        )
        channel.queue_bind(OTP_QUEUE, IDENTITY_EVENTS_EXCHANGE, routing_key=OTP_REQUESTED)
    finally:
        connection.close()
