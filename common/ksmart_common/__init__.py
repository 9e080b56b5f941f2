"""The library every K-Smart service shares: one copy of the event envelope,
the event store, the relay, consumer helpers, configuration and logging."""

import warnings

# nameko 2.14.1 runs on eventlet (see docs/decisions.md); its deprecation
# notice on every start tells operators nothing they can act on.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
