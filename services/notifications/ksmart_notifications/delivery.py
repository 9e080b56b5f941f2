"""One attempt to deliver one message, and what the log records of it.

The message's row stays locked for the attempt, so two workers handed the
same message (a duplicate hand-over, a resend racing a retry) never both
send it: the second skips it, and the first settles it. What was sent is
settled before the worker acknowledges the hand-over.

A provider outage surfaces as RetryLater, raised only after the failure is
recorded: the consumer then moves the hand-over to a retry queue (back-off)
and, after the last delay, to the dead-letter queue, where an operator sees
it and sends it again. A permanent refusal (a number that does not exist)
is recorded and not retried: retrying cannot change the answer.

A message that cannot be given to the provider exactly once (the process
dies after the provider took it and before the log says so) is sent again on
redelivery, with the same message id as the provider's idempotency
reference, so a provider that honours it does not deliver it twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

import sqlalchemy as sa

from ksmart_common import metrics
from ksmart_common.logging import get_logger
from ksmart_notifications import delivery_log
from ksmart_notifications.channels.base import Channel, DeliveryFailed, OutgoingMessage

log = get_logger(__name__)

SENT, FAILED, RETRYING, DEAD = "sent", "failed", "retrying", "dead"


class RetryLater(Exception):
    """The provider could not take the message now; it was recorded."""


def attempt(
    engine: sa.Engine,
    channels: Mapping[str, Channel],
    message_id: str,
    last_attempt: bool,
    now: Callable[[], datetime],
    text: Callable[[sa.Row], tuple[str | None, str | None]] | None = None,
    gave_up: str = DEAD,
) -> str:
    """Try to deliver the message; return what happened ("sent", "failed",
    "skipped": settled already, held, or being sent by another worker), or
    raise RetryLater. `text` gives the (subject, body) of a message whose
    text is not stored (a one-time code); `gave_up` is the status a last
    failed attempt leaves."""
    with engine.begin() as conn:
        row = delivery_log.claim(conn, message_id)
        if row is None or row.status in delivery_log.SETTLED:
            return "skipped"
        if row.status == "scheduled" and row.not_before is not None and row.not_before > now():
            return "skipped"  # the sweeper queues it when the quiet hours end
        subject, body = text(row) if text is not None else (row.subject, row.body)
        failure = _send(channels, row, subject, body)
        if isinstance(failure, DeliveryFailed):
            status = FAILED if failure.permanent else (gave_up if last_attempt else RETRYING)
            delivery_log.settle(conn, message_id, status, now(), error=failure.reason[:500])
        else:
            delivery_log.settle(conn, message_id, SENT, now(), provider_message_id=failure)
            status = SENT
    metrics.NOTIFICATIONS.labels(row.channel, status).inc()
    log.info(
        "message attempt",
        message_id=message_id,
        channel=row.channel,
        outcome=status,
        attempt=row.attempts + 1,
    )
    if status in (RETRYING, DEAD):
        raise RetryLater(f"{row.channel} message {message_id}: {failure.reason}")
    return status


def _send(
    channels: Mapping[str, Channel], row: sa.Row, subject: str | None, body: str | None
) -> DeliveryFailed | str:
    """The provider's id for the message, or why it was not taken."""
    channel = channels.get(row.channel)
    if channel is None:
        # An operator's fix (configure the channel) makes a retry succeed.
        return DeliveryFailed(f"no {row.channel} channel is configured")
    if body is None:
        return DeliveryFailed("nothing to send: the text is gone", permanent=True)
    outgoing = OutgoingMessage(
        message_id=row.message_id,
        destination=row.destination,
        subject=subject,
        text=body,
        language=row.language,
    )
    try:
        return channel.send(outgoing).provider_message_id
    except DeliveryFailed as failure:
        return failure
