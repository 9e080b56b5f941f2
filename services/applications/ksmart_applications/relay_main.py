"""`ksmart-relay`: publish the applications service's stored events.

A plain process (not a nameko container): it needs blocking publisher
confirms and a LISTEN connection, and runs as its own deployment.
"""

from __future__ import annotations

import signal

from ksmart_common import config
from ksmart_common.logging import configure_logging
from ksmart_common.relay import Relay


def main() -> None:
    configure_logging(service="relay")
    relay = Relay(config.relay_database_url(), config.amqp_uri())
    signal.signal(signal.SIGTERM, lambda *_: relay.stop())
    signal.signal(signal.SIGINT, lambda *_: relay.stop())
    relay.run()


if __name__ == "__main__":
    main()
