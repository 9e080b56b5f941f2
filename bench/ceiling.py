"""The bare ceiling of the platform's framework path, for bench/e2e.py: a
nameko HTTP entrypoint making one RPC call to a service method that does
nothing, run as two processes (like the gateway and a service).

    python -m bench.ceiling service   # the RPC service: one method, no work
    python -m bench.ceiling gateway   # POST /noop -> one RPC call -> 201 {}

Configured like the platform's own processes (ksmart_common.config:
KSMART_AMQP_URI, KSMART_GATEWAY_ADDRESS, KSMART_MAX_WORKERS, JSON
serializer, same RPC exchange), so the only difference is the work done.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from nameko.rpc import RpcProxy, rpc  # noqa: E402
from nameko.web.handlers import http  # noqa: E402
from werkzeug.wrappers import Request, Response  # noqa: E402

from ksmart_common import config as ksmart_config  # noqa: E402

NOOP_PATH = "/noop"


class NoopService:
    name = "bench_noop"

    @rpc
    def nothing(self) -> None:
        return None


class NoopGateway:
    name = "bench_gateway"

    noop = RpcProxy("bench_noop")

    @http("POST", NOOP_PATH)
    def call_noop(self, request: Request) -> Response:
        request.get_data(cache=False)  # read the body, as the gateway does
        self.noop.nothing()
        return Response("{}", status=201, content_type="application/json")


ROLES = {"service": NoopService, "gateway": NoopGateway}


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1 or args[0] not in ROLES:
        raise SystemExit(f"usage: python -m bench.ceiling {'|'.join(ROLES)}")
    from nameko.cli.run import run

    run([ROLES[args[0]]], ksmart_config.nameko_config("bench_ceiling"))


if __name__ == "__main__":
    main()
