"""Every Prometheus metric the platform exposes, defined once.

Each process has its own registry (the default one) and serves it at
/metrics on its operations port (ksmart_common.operations). Label values
come from small, fixed sets (entrypoint names, queue names, channels,
outcomes, event types of the catalogue, local-body codes): never ids.

Consumer lag in positions is the difference of two gauges from two
processes: `ksmart_relay_published_position - ksmart_consumer_position`
(per queue); see docs/operations.md for the queries.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# -- every nameko worker: RPC calls, HTTP requests, consumed messages, timers --
WORKER_SECONDS = Histogram(
    "ksmart_worker_seconds",
    "Time a worker took, by entrypoint kind (rpc, http, consumer, timer) and method",
    ("service", "kind", "method"),
    buckets=LATENCY_BUCKETS,
)
WORKER_FAILURES = Counter(
    "ksmart_worker_failures_total",
    "Workers that ended with an error, by entrypoint and error type",
    ("service", "kind", "method", "error"),
)

# -- the gateway ------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "ksmart_http_requests_total",
    "HTTP requests answered by the gateway, by route and status",
    ("method", "route", "status"),
)
HTTP_SECONDS = Histogram(
    "ksmart_http_request_seconds",
    "Time to answer an HTTP request, by route",
    ("method", "route"),
    buckets=LATENCY_BUCKETS,
)

# -- events -------------------------------------------------------------------------
EVENTS_APPENDED = Counter(
    "ksmart_events_appended_total", "Events stored in the event store", ("event_type",)
)
EVENTS_PUBLISHED = Counter(
    "ksmart_events_published_total", "Stored events the relay published (confirmed)"
)
RELAY_POSITION = Gauge(
    "ksmart_relay_published_position", "Global position of the last event the relay published"
)
EVENTS_CONSUMED = Counter(
    "ksmart_messages_consumed_total",
    "Messages a consumer handled, by queue and outcome (ok, retried, dead_lettered,"
    " requeued, deferred: the handler met an outage, which spends no attempt)",
    ("queue", "outcome"),
)
CONSUMER_POSITION = Gauge(
    "ksmart_consumer_position",
    "Highest global position a consumer has handled, by queue",
    ("queue",),
)

# -- notifications ------------------------------------------------------------------
NOTIFICATIONS = Counter(
    "ksmart_notifications_total",
    "Attempts to deliver a message, by channel and outcome (sent, failed, retrying, dead)",
    ("channel", "outcome"),
)

# -- the transparency log (the checkpointer) -----------------------------------------
LOG_TREE_SIZE = Gauge("ksmart_log_tree_size", "Events in the transparency log's tree (its leaves)")
LOG_EVENTS_ABSORBED = Counter(
    "ksmart_log_events_absorbed_total", "Events the checkpointer added to the log's tree"
)
LOG_CHECKPOINT_SIZE = Gauge(
    "ksmart_log_checkpoint_size", "Tree size of the latest signed checkpoint"
)
LOG_CHECKPOINT_AGE = Gauge(
    "ksmart_log_checkpoint_age_seconds", "Seconds since the latest checkpoint was signed"
)
LOG_LAG_EVENTS = Gauge(
    "ksmart_log_lag_events", "Stored events that no signed checkpoint includes yet"
)
LOG_LAG_SECONDS = Gauge(
    "ksmart_log_lag_seconds",
    "Age of the oldest stored event that no signed checkpoint includes yet (0 when none)",
)
WITNESS_COSIGNATURES = Counter(
    "ksmart_witness_cosignatures_total", "Cosignatures a witness gave and we stored", ("witness",)
)
WITNESS_FAILURES = Counter(
    "ksmart_witness_failures_total",
    "Requests for a cosignature that failed (down, refused, or a bad cosignature)",
    ("witness",),
)
