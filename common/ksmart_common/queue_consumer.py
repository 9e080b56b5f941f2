"""nameko's QueueConsumer, settling messages without ever raising for a
broker that went away.

nameko runs a message's ack or requeue in the worker's thread (or a thread
of the consumer's), and any error that escapes such a thread kills the
whole container (`ServiceContainer._handle_thread_exited`): the process
exits. nameko's own guard catches only the socket's ConnectionError; py-amqp
raises its own errors too (RecoverableConnectionError for a connection it
already closed, OSError for a closed socket). When the broker is gone, a
message that cannot be settled needs nothing more: the broker puts every
unacknowledged message of a closed channel back in its queue, and the
consumer (kombu's ConsumerMixin) reconnects and receives it again.
"""

from __future__ import annotations

from nameko.messaging import QueueConsumer

from ksmart_common.logging import get_logger
from ksmart_common.outages import is_broker_outage

log = get_logger(__name__)


class OutageTolerantQueueConsumer(QueueConsumer):
    def ack_message(self, message) -> None:
        _settle(super().ack_message, message, "ack")

    def requeue_message(self, message) -> None:
        _settle(super().requeue_message, message, "requeue")


def _settle(settle, message, action: str) -> None:
    try:
        settle(message)
    except Exception as error:
        if not _connection_gone(error, action):
            raise


def _connection_gone(error: Exception, action: str) -> bool:
    """Whether `error` says the broker connection is gone (a closed socket
    is an OSError too); if so, logged."""
    if not (isinstance(error, OSError) or is_broker_outage(error)):
        return False
    log.warning(
        "message not settled: the broker connection is gone; the broker redelivers it",
        action=action,
        error=repr(error),
    )
    return True
