"""`ksmart-relay`: publish the applications service's stored events.

A plain process (not a nameko container): it needs blocking publisher
confirms and a LISTEN connection, and runs as its own deployment.
"""

from __future__ import annotations

import argparse
import signal

from ksmart_common import config
from ksmart_common.logging import configure_logging
from ksmart_common.operations import broker_check, database_check, serve_in_thread
from ksmart_common.relay import Relay

USAGE = f"""\
Publishes every event the applications service stores, in position order, to
RabbitMQ (publisher confirms), from its checkpoint on; runs until SIGTERM.

Settings, from the environment:
  KSMART_RELAY_DATABASE_URL   the applications database, as the relay's own role
  KSMART_RELAY_AMQP_URI       the broker, as the relay's own user (else KSMART_AMQP_URI)
  KSMART_OPS_ADDRESS_RELAY    host:port of /health/live, /health/ready, /metrics
                              (else KSMART_OPS_ADDRESS, else {config.ops_address("relay", {})})
"""


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(
        prog="ksmart-relay",
        description=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(argv)
    configure_logging(service="relay")
    amqp_uri = config.amqp_uri(process="relay")
    relay = Relay(config.relay_database_url(), amqp_uri)
    operations = serve_in_thread(
        "relay",
        {"database": database_check(relay.engine), "broker": broker_check(amqp_uri)},
    )
    signal.signal(signal.SIGTERM, lambda *_: relay.stop())
    signal.signal(signal.SIGINT, lambda *_: relay.stop())
    try:
        relay.run()
    finally:
        operations.shutdown()


if __name__ == "__main__":
    main()
