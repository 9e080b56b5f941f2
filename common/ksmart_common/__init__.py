"""The library every K-Smart service shares: one copy of the event envelope,
the event store, the relay, consumer helpers, configuration and logging."""
