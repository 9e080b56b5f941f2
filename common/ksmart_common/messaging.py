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
