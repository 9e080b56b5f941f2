"""A nameko entrypoint that consumes events reliably.

nameko's own event handler acks a message even when the handler fails (or,
with requeue_on_error, puts it straight back: a hot loop). This one:

- consumes a durable quorum queue of the service's own, bound to the events
  exchange, so a RabbitMQ cluster replicates it;
- acks only after the handler returned, and handlers commit inside
  themselves, so an ack always follows a committed effect;
- on failure, moves the message to a delay queue (`<queue>.retry.<ms>`, whose
  TTL dead-letters it back to the main queue): back-off, not a hot loop;
- after the last delay, moves it to `<queue>.dead`, where an operator sees it
  and replays it (`ksmart-admin replay-dead-letters <queue>`);
- does not count a failure that only says the infrastructure is out of
  reach (the database, the broker, a called service: ksmart_common.outages)
  as an attempt: the message is deferred, moved to the first delay queue
  with its attempt count unchanged, however often and however long the
  outage lasts. Back-off without a hot loop, and an outage dead-letters
  nothing; only the handler's own failures spend the retry budget;
- moves a message (publish with confirms, then ack) so that it is never lost:
  if the move itself fails, the message is requeued instead (or, with the
  broker gone, redelivered by it once the consumer reconnects).

Handlers must be idempotent: delivery is at least once, in any order.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from functools import partial

from kombu import Connection, Exchange, Queue, binding
from nameko.exceptions import ContainerBeingKilled
from nameko.messaging import Consumer

from ksmart_common import metrics
from ksmart_common.config import RetryPolicy
from ksmart_common.logging import get_logger
from ksmart_common.messaging import EVENTS_EXCHANGE
from ksmart_common.outages import is_outage
from ksmart_common.queue_consumer import OutageTolerantQueueConsumer

log = get_logger(__name__)

ATTEMPT_HEADER = "x-ksmart-attempt"
ERROR_HEADER = "x-ksmart-last-error"
DEFERRED_HEADER = "x-ksmart-deferred"
QUORUM = {"x-queue-type": "quorum"}
# Moving a failed message must not wait for a broker that is gone: one
# connection attempt, then the message is requeued instead.
MOVE_TRANSPORT_OPTIONS = {"confirm_publish": True, "max_retries": 0}


@dataclass(frozen=True)
class Disposition:
    """What becomes of a message whose handler failed."""

    outcome: str  # "retried", "dead_lettered" or "deferred" (an outage)
    failed_attempts: int  # the message's count of failed attempts from now on
    destination: str  # the queue it moves to


@dataclass(frozen=True)
class ConsumerTopology:
    """The queues one consumer owns: main, one per retry delay, and dead."""

    queue_name: str
    routing_keys: tuple[str, ...]
    delays_ms: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.delays_ms:
            # Retries and deferrals wait there: without one, back in the
            # main queue at once, a failing message would loop hot.
            raise ValueError(f"{self.queue_name}: a consumer needs at least one retry delay")

    @property
    def exchange(self) -> Exchange:
        return Exchange(EVENTS_EXCHANGE, type="topic", durable=True)

    def main_queue(self) -> Queue:
        return Queue(
            self.queue_name,
            bindings=[binding(self.exchange, routing_key=key) for key in self.routing_keys],
            durable=True,
            queue_arguments=QUORUM,
        )

    def retry_queue_name(self, delay_ms: int) -> str:
        return f"{self.queue_name}.retry.{delay_ms}ms"

    @property
    def dead_queue_name(self) -> str:
        return f"{self.queue_name}.dead"

    def side_queues(self) -> list[Queue]:
        retries = [
            Queue(
                self.retry_queue_name(delay),
                durable=True,
                queue_arguments={
                    **QUORUM,
                    "x-message-ttl": delay,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.queue_name,
                    # Expiry moves the message back only once the main queue
                    # has it: at-least-once dead-lettering, not at-most-once.
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                },
            )
            for delay in self.delays_ms
        ]
        return [*retries, Queue(self.dead_queue_name, durable=True, queue_arguments=QUORUM)]

    def is_last_attempt(self, failed_attempts: int) -> bool:
        """Whether a message that failed `failed_attempts` times before goes
        to the dead-letter queue if it fails once more."""
        return failed_attempts >= len(self.delays_ms)

    def next_destination(self, attempt: int) -> str:
        """Where a message goes after failing `attempt` times (1, 2, ...)."""
        if attempt <= len(self.delays_ms):
            return self.retry_queue_name(self.delays_ms[attempt - 1])
        return self.dead_queue_name

    def after_failure(self, failed_attempts: int, error: BaseException) -> Disposition:
        """Where a message that failed `failed_attempts` times before goes
        now that its handler raised `error`. An outage is not the message's
        fault: it waits in the shortest delay queue, its count unchanged."""
        if is_outage(error):
            return Disposition(
                "deferred", failed_attempts, self.retry_queue_name(self.delays_ms[0])
            )
        attempt = failed_attempts + 1
        destination = self.next_destination(attempt)
        outcome = "dead_lettered" if destination == self.dead_queue_name else "retried"
        return Disposition(outcome, attempt, destination)

    def declare(self, amqp_uri: str) -> None:
        with Connection(amqp_uri) as connection:
            channel = connection.default_channel
            self.exchange.declare(channel=channel)
            for queue in (self.main_queue(), *self.side_queues()):
                queue.declare(channel=channel)


class EventConsumer(Consumer):
    """routing_keys=() consumes a work queue that is published to directly
    (default exchange), with the same retries and dead letters. With
    pass_attempts, the handler is also given `failed_attempts` (how often
    the message failed before) and `last_attempt` (whether failing again
    dead-letters it), so it can record what is about to happen."""

    queue_consumer = OutageTolerantQueueConsumer()

    def __init__(
        self,
        queue_name: str,
        routing_keys: tuple[str, ...] = ("#",),
        pass_attempts: bool = False,
        **kwargs,
    ):
        self.queue_name = queue_name
        self.routing_keys = routing_keys
        self.pass_attempts = pass_attempts
        self.highest_position = 0
        super().__init__(queue=None, **kwargs)

    def setup(self) -> None:
        self.topology = ConsumerTopology(
            self.queue_name, self.routing_keys, RetryPolicy.from_env().delays_ms
        )
        self.amqp_uri = self.container.config["AMQP_URI"]
        self.topology.declare(self.amqp_uri)
        self.queue = self.topology.main_queue()
        super().setup()

    def handle_message(self, body, message) -> None:
        if not self.pass_attempts:
            super().handle_message(body, message)
            return
        failed = int((message.headers or {}).get(ATTEMPT_HEADER, 0))
        kwargs = {
            "failed_attempts": failed,
            "last_attempt": self.topology.is_last_attempt(failed),
        }
        handle_result = partial(self.handle_result, message)
        try:
            self.container.spawn_worker(
                self,
                (body,),
                kwargs,
                context_data=self.unpack_message_headers(message),
                handle_result=handle_result,
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def handle_message_processed(self, message, result=None, exc_info=None) -> None:
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            metrics.EVENTS_CONSUMED.labels(self.queue_name, "ok").inc()
            position = (message.headers or {}).get("global_position")
            # Positions arrive in any order: the gauge keeps the highest.
            if isinstance(position, int) and position > self.highest_position:
                self.highest_position = position
                metrics.CONSUMER_POSITION.labels(self.queue_name).set(position)
            return
        headers = dict(message.headers or {})
        failed = int(headers.get(ATTEMPT_HEADER, 0))
        disposition = self.topology.after_failure(failed, exc_info[1])
        error = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
        headers.update({ATTEMPT_HEADER: disposition.failed_attempts, ERROR_HEADER: error[:1000]})
        if disposition.outcome == "deferred":
            headers[DEFERRED_HEADER] = int(headers.get(DEFERRED_HEADER, 0)) + 1
        try:
            self._move(message, disposition.destination, headers)
        except Exception:  # noqa: BLE001 - whatever failed, the message must survive
            log.warning(
                "could not move a failed message; requeueing it",
                queue=self.queue_name,
                error=error,
                exc_info=True,
            )
            self.queue_consumer.requeue_message(message)
            metrics.EVENTS_CONSUMED.labels(self.queue_name, "requeued").inc()
            return
        metrics.EVENTS_CONSUMED.labels(self.queue_name, disposition.outcome).inc()
        log.warning(
            "handler could not reach its infrastructure; message deferred"
            if disposition.outcome == "deferred"
            else "handler failed; message moved",
            queue=self.queue_name,
            destination=disposition.destination,
            attempt=disposition.failed_attempts,
            error=error,
        )
        self.queue_consumer.ack_message(message)

    def _move(self, message, destination: str, headers: dict) -> None:
        # Failures are rare, so a short-lived connection with confirms is fine.
        with Connection(self.amqp_uri, transport_options=MOVE_TRANSPORT_OPTIONS) as connection:
            connection.Producer().publish(
                message.body,
                exchange="",
                routing_key=destination,
                headers=headers,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                delivery_mode=2,
                message_id=message.properties.get("message_id"),
                type=message.properties.get("type"),
                retry=False,
            )


consume_events = EventConsumer.decorator
