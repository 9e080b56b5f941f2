"""The notifications service's own queues (each with its retry queues and
dead-letter queue, see ksmart_common.consumer), named once for the service
and for `ksmart-admin setup`, which declares them before any event flows."""

from ksmart_common.consumer import ConsumerTopology

# Stored events of every file, from applications.events.
EVENTS_QUEUE = "notifications.events"
# One hand-over per message to send; published to directly.
DELIVERIES_QUEUE = "notifications.deliveries"


def topologies(delays_ms: tuple[int, ...]) -> list[ConsumerTopology]:
    return [
        ConsumerTopology(EVENTS_QUEUE, ("#",), delays_ms),
        ConsumerTopology(DELIVERIES_QUEUE, (), delays_ms),
    ]
