"""What operators and orchestrators ask every process: is it alive, is it
ready, what are its numbers. Served on a port of its own (KSMART_OPS_ADDRESS;
9100 in containers), never on the public API's:

    GET /health/live    200 while the process serves requests at all
    GET /health/ready   200 when its database and broker answer, else 503
                        with what failed (a replica not ready gets no traffic)
    GET /metrics        Prometheus text (ksmart_common.metrics)

In a nameko service, `Operations` is one dependency declared on the class:
it serves those endpoints from a green thread, times every worker (RPC,
HTTP, consumed message, timer) into ksmart_worker_seconds, and puts the
request and correlation ids of the worker into every log line it writes.
The relay, a plain process, serves the same endpoints from a thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import sqlalchemy as sa
import structlog
from kombu import Connection
from nameko.extensions import DependencyProvider
from nameko.messaging import Consumer
from nameko.rpc import Rpc
from nameko.timer import Timer
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ksmart_common import config, metrics
from ksmart_common.logging import get_logger

log = get_logger(__name__)

# A readiness check: None when fine, else what is wrong (never a secret).
Check = Callable[[], str | None]
CHECK_CACHE_SECONDS = 2.0


def operations_app(checks: Mapping[str, Check]) -> Callable:
    """The WSGI application of the operations endpoints."""

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "GET":
            return _answer(start_response, 405, {"error": "GET only"})
        if path == "/health/live":
            return _answer(start_response, 200, {"status": "ok"})
        if path == "/health/ready":
            failures = {}
            for name, check in checks.items():
                try:
                    problem = check()
                except Exception as error:  # noqa: BLE001 - a check must not crash the probe
                    problem = type(error).__name__
                if problem:
                    failures[name] = problem
            if failures:
                return _answer(start_response, 503, {"status": "not ready", "failing": failures})
            return _answer(start_response, 200, {"status": "ready", "checked": sorted(checks)})
        if path == "/metrics":
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [generate_latest()]
        return _answer(start_response, 404, {"error": "not found"})

    return app


def _answer(start_response, status: int, body: dict) -> list[bytes]:
    reasons = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
    start_response(f"{status} {reasons[status]}", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


def database_check(engine: sa.Engine) -> Check:
    def check() -> str | None:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return None

    return _cached(check)


def broker_check(amqp_uri: str) -> Check:
    def check() -> str | None:
        with Connection(amqp_uri, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
        return None

    return _cached(check)


def _cached(check: Check) -> Check:
    """A probe every few seconds from every orchestrator must not become a
    connection storm: an answer is reused for a moment."""
    last: list = [0.0, None]

    def cached() -> str | None:
        now = time.monotonic()
        if now - last[0] > CHECK_CACHE_SECONDS:
            try:
                last[1] = check()
            except Exception as error:  # noqa: BLE001 - reported, not raised
                last[1] = f"{type(error).__name__}"
            last[0] = now
        return last[1]

    return cached


def ops_address(process: str) -> tuple[str, int]:
    host, _, port = config.ops_address(process).rpartition(":")
    return host or "127.0.0.1", int(port)


# -- in a nameko service ------------------------------------------------------


class Operations(DependencyProvider):
    """Health, readiness and metrics for a nameko service; see the module."""

    def setup(self) -> None:
        self.service_name = self.container.service_name
        self.amqp_uri = self.container.config["AMQP_URI"]
        self.started: dict[int, float] = {}

    def start(self) -> None:
        checks: dict[str, Check] = {"broker": broker_check(self.amqp_uri)}
        for provider in self.container.dependencies:
            engine = getattr(provider, "engine", None)
            if isinstance(engine, sa.Engine):
                checks["database"] = database_check(engine)
        import eventlet
        import eventlet.wsgi

        host, port = ops_address(self.service_name)
        self.socket = eventlet.listen((host, port))
        app = operations_app(checks)
        self.container.spawn_managed_thread(
            lambda: eventlet.wsgi.server(self.socket, app, log_output=False),
            identifier="operations",
        )
        log.info("operations endpoints listening", address=f"{host}:{port}")

    def stop(self) -> None:
        socket = getattr(self, "socket", None)
        if socket is not None:
            socket.close()

    kill = stop

    def worker_setup(self, worker_ctx) -> None:
        self.started[id(worker_ctx)] = time.perf_counter()
        data = worker_ctx.data or {}
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            **{
                key: data[key]
                for key in ("correlation_id", "request_id")
                if data.get(key) is not None
            }
        )

    def worker_result(self, worker_ctx, result=None, exc_info=None) -> None:
        started = self.started.pop(id(worker_ctx), None)
        kind = entrypoint_kind(worker_ctx.entrypoint)
        method = worker_ctx.entrypoint.method_name
        elapsed = time.perf_counter() - started if started is not None else 0.0
        metrics.WORKER_SECONDS.labels(self.service_name, kind, method).observe(elapsed)
        if exc_info is not None:
            metrics.WORKER_FAILURES.labels(
                self.service_name, kind, method, exc_info[0].__name__
            ).inc()
        if kind == "rpc":
            # The services' access log (the gateway writes its own, with the
            # HTTP status); the correlation id is bound for this worker.
            log.info(
                "rpc handled",
                method=method,
                duration_ms=round(elapsed * 1000, 1),
                error=exc_info[0].__name__ if exc_info is not None else None,
            )

    def worker_teardown(self, worker_ctx) -> None:
        structlog.contextvars.clear_contextvars()


def entrypoint_kind(entrypoint) -> str:
    if isinstance(entrypoint, Rpc):
        return "rpc"
    if isinstance(entrypoint, HttpRequestHandler):
        return "http"
    if isinstance(entrypoint, Consumer):
        return "consumer"
    if isinstance(entrypoint, Timer):
        return "timer"
    return type(entrypoint).__name__.lower()


# -- in a plain process (the relay) --------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - the stdlib's name
        pass  # probes every few seconds would drown the process's own log


def serve_in_thread(process: str, checks: Mapping[str, Check]) -> WSGIServer:
    """Serve the endpoints from a daemon thread; `shutdown()` stops it."""
    host, port = ops_address(process)
    server = make_server(host, port, operations_app(checks), handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="operations", daemon=True).start()
    log.info("operations endpoints listening", address=f"{host}:{server.server_port}")
    return server
