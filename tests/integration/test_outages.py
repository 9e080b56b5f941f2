"""Outages of the infrastructure, as one service process sees them: its
connections to RabbitMQ or PostgreSQL go through a loopback proxy the test
cuts and restores (tests/support/tcp_proxy.py), so nothing stops the broker
and the database other tests share. Each service runs in a process of its
own on a vhost (and a database) of the test's own.

- A broker outage in the middle of a worker's publish fails that worker,
  never its process, and every entrypoint consumes again once the broker is
  back. A probe's worker publishes until a publish fails; then nothing can
  carry its answer back. A caller on a direct connection, calling through
  `ksmart_common.rpc.call` as every service does, gets ServiceUnavailable
  (a 503 at the gateway); the probe keeps running, and once the proxy lets
  connections through again it answers RPC calls and consumes events.
- A database outage spends none of a message's retry budget: a handler
  that cannot reach its database fails many more times than the budget
  allows, nothing is dead-lettered, and the message is handled once the
  database is back.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pika
import pytest
import sqlalchemy as sa

from tests.support.broker import fresh_vhost
from tests.support.databases import fresh_service_database
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
PROBE = "outage_probe"
CALLER = "outage_caller"
RECORDER = "outage_recorder"
RPC_EXCHANGE = "nameko-rpc"
EVENTS_EXCHANGE = "applications.events"
PROBE_EVENTS = f"{PROBE}.events"
PROBE_QUEUE = "outage_probe.events"
RECORDS_QUEUE = "outage_recorder.events"
PROBED = "Probed"
MARKER_ENV = "KSMART_TEST_PUBLISH_FAILED_MARKER"
# Longer than the probe's publish retries (nameko's, a few seconds), so the
# caller's deadline, not the probe's failure, answers the call.
CALLER_TIMEOUT_SECONDS = 20
RETRY_DELAYS_MS = (100, 200)
# A failing message is tried once, then once after each delay.
RETRY_BUDGET = 1 + len(RETRY_DELAYS_MS)
DEFERRED_LOG = "handler could not reach its infrastructure; message deferred"


# -- the services (each run in a subprocess: see `serve`) --------------------------------


def _services():
    """Defined inside a function: only the subprocesses import nameko's
    entrypoints, after eventlet has patched the standard library."""
    import eventlet
    from nameko.events import EventDispatcher
    from nameko.rpc import RpcProxy

    from ksmart_common.consumer import consume_events
    from ksmart_common.database import Database
    from ksmart_common.rpc import call, rpc

    handled: list[str] = []

    class OutageProbe:
        name = PROBE

        announce = EventDispatcher()

        @rpc
        def ping(self) -> str:
            return "pong"

        @rpc
        def publish_until_it_fails(self) -> int:
            """Publishes an event every 50 ms until a publish fails (the
            proxy was cut), notes the failure in a file, and fails."""
            published = 0
            while published < 2_000:
                try:
                    self.announce("Tick", {"published": published})
                except Exception as error:
                    Path(os.environ[MARKER_ENV]).write_text(type(error).__name__)
                    raise
                published += 1
                eventlet.sleep(0.05)
            return published

        @consume_events(PROBE_QUEUE, routing_keys=(PROBED,))
        def on_probed(self, body: dict) -> None:
            handled.append(body["probe_id"])

        @rpc
        def handled(self) -> list[str]:
            return list(handled)

    class OutageCaller:
        name = CALLER

        probe = RpcProxy(PROBE)

        @rpc
        def ping(self) -> str:
            return "pong"

        @rpc
        def call_probe(self) -> int:
            return call(self.probe.publish_until_it_fails, timeout=CALLER_TIMEOUT_SECONDS)

    class OutageRecorder:
        """Records each event's probe id in its database."""

        name = RECORDER

        db = Database()

        @rpc
        def ping(self) -> str:
            return "pong"

        @consume_events(RECORDS_QUEUE, routing_keys=(PROBED,))
        def on_probed(self, body: dict) -> None:
            with self.db.begin() as conn:
                conn.execute(
                    sa.text("INSERT INTO outage_records (probe_id) VALUES (:probe_id)"),
                    {"probe_id": body["probe_id"]},
                )

    return {PROBE: OutageProbe, CALLER: OutageCaller, RECORDER: OutageRecorder}


def serve(service: str, amqp_uri: str, db_url: str | None) -> None:
    """The subprocess's body (eventlet is already patched)."""
    from nameko.runners import ServiceRunner

    from ksmart_common.logging import configure_logging

    configure_logging(service=service)
    config = {"AMQP_URI": amqp_uri, "SERIALIZER": "json", "max_workers": 10, "DB_URL": db_url}
    runner = ServiceRunner(config)
    runner.add_service(_services()[service])
    runner.start()
    runner.wait()


@contextlib.contextmanager
def running(
    service: str, amqp_uri: str, log_path: Path, marker: Path, db_url: str | None = None
) -> Iterator[subprocess.Popen]:
    code = (
        "import eventlet; eventlet.monkey_patch(); "
        "from psycogreen.eventlet import patch_psycopg; patch_psycopg(); "
        "from tests.integration.test_outages import serve; "
        f"serve({service!r}, {amqp_uri!r}, {db_url!r})"
    )
    environ = {
        **os.environ,
        MARKER_ENV: str(marker),
        "KSMART_RETRY_DELAYS_MS": ",".join(map(str, RETRY_DELAYS_MS)),
        "PYTHONPATH": str(ROOT),
    }
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, env=environ, stdout=log, stderr=log
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# -- talking to them over AMQP, as nameko does ----------------------------------------------


class RpcClient:
    """Calls nameko RPC methods from this (unpatched) process with pika."""

    def __init__(self, amqp_uri: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(RPC_EXCHANGE, exchange_type="topic", durable=True)
        self.reply_queue = f"rpc.reply-outage-test-{uuid.uuid4().hex}"
        self.channel.queue_declare(self.reply_queue, exclusive=True, auto_delete=True)
        self.channel.queue_bind(self.reply_queue, RPC_EXCHANGE, routing_key=self.reply_queue)

    def send(self, service: str, method: str) -> str:
        correlation_id = uuid.uuid4().hex
        self.channel.basic_publish(
            RPC_EXCHANGE,
            f"{service}.{method}",
            json.dumps({"args": [], "kwargs": {}}),
            pika.BasicProperties(
                content_type="application/json",
                reply_to=self.reply_queue,
                correlation_id=correlation_id,
            ),
        )
        return correlation_id

    def reply(self, correlation_id: str, timeout: float) -> dict:
        def arrived():
            method, properties, body = self.channel.basic_get(self.reply_queue, auto_ack=True)
            if method is not None and properties.correlation_id == correlation_id:
                return json.loads(body)
            return None

        return wait_for(arrived, timeout=timeout, message=f"the reply to {correlation_id}")

    def call(self, service: str, method: str, timeout: float = 10) -> object:
        reply = self.reply(self.send(service, method), timeout)
        assert reply["error"] is None, reply["error"]
        return reply["result"]

    def publish_event(self, probe_id: str) -> None:
        self.channel.basic_publish(
            EVENTS_EXCHANGE,
            PROBED,
            json.dumps({"probe_id": probe_id}),
            pika.BasicProperties(content_type="application/json", delivery_mode=2),
        )

    def depth(self, queue: str) -> int:
        return self.channel.queue_declare(queue, passive=True).method.message_count

    def close(self) -> None:
        self.connection.close()


def _through(proxy: TcpProxy, url: str) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _answers(client: RpcClient, service: str, process: subprocess.Popen) -> str | None:
    """Whether the service "answers" or has "exited" (either ends a wait)."""
    if process.poll() is not None:
        return "exited"
    try:
        return "answers" if client.call(service, "ping", timeout=2) == "pong" else None
    except AssertionError:
        return None


def _wait_until_answering(client: RpcClient, service: str, process, log: Path) -> None:
    state = wait_for(
        lambda: _answers(client, service, process),
        timeout=90,
        interval=0.5,
        message=f"{service} to answer",
    )
    assert state == "answers", f"{service} exited with {process.returncode}: {_log_tail(log)}"


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _logged(path: Path, message: str, queue: str) -> int:
    """How many of the JSON log lines in `path` say `message` about `queue`."""
    count = 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        count += entry.get("message") == message and entry.get("queue") == queue
    return count


# -- the tests ----------------------------------------------------------------------------


@pytest.fixture
def vhost_uri():
    with fresh_vhost() as uri:
        yield uri


def test_a_publish_failing_in_an_outage_fails_the_worker_not_the_process(vhost_uri, tmp_path):
    proxy = TcpProxy(urlsplit(vhost_uri).port or 5672).start()
    marker = tmp_path / "publish-failed"
    probe_log, caller_log = tmp_path / "probe.log", tmp_path / "caller.log"
    client = RpcClient(vhost_uri)
    ticks = client.channel.queue_declare("", exclusive=True).method.queue
    client.channel.exchange_declare(PROBE_EVENTS, exchange_type="topic", durable=True)
    client.channel.queue_bind(ticks, PROBE_EVENTS, routing_key="Tick")
    try:
        with (
            running(PROBE, _through(proxy, vhost_uri), probe_log, marker) as probe,
            running(CALLER, vhost_uri, caller_log, marker) as caller,
        ):
            _wait_until_answering(client, PROBE, probe, probe_log)
            _wait_until_answering(client, CALLER, caller, caller_log)

            # The probe's worker is publishing when its broker goes away.
            pending = client.send(CALLER, "call_probe")
            wait_for(
                lambda: client.channel.basic_get(ticks, auto_ack=True)[0],
                timeout=30,
                message="the probe's worker to publish",
            )
            proxy.cut()

            failed = wait_for(
                lambda: marker.exists() and marker.read_text(),
                timeout=60,
                message="a publish of the probe's worker to fail",
            )
            assert failed == "OperationalError", failed
            # The caller is told the service is unavailable (503), in time;
            # by then the probe has tried (and failed) to send its answer.
            reply = client.reply(pending, timeout=CALLER_TIMEOUT_SECONDS + 15)
            assert reply["error"] and reply["error"]["exc_type"] == "ServiceUnavailable", reply
            assert probe.poll() is None, (
                f"the probe exited with {probe.returncode}: {_log_tail(probe_log)}"
            )

            # The broker is back: the probe's RPC entrypoint and its event
            # consumer consume again, in the same process.
            proxy.restore()
            _wait_until_answering(client, PROBE, probe, probe_log)
            probe_id = uuid.uuid4().hex
            client.publish_event(probe_id)
            wait_for(
                lambda: probe_id in client.call(PROBE, "handled"),
                timeout=30,
                interval=0.2,
                message="the probe to consume an event again",
            )
            assert probe.poll() is None
    finally:
        client.close()
        proxy.cut()


@pytest.fixture
def recorder_database():
    with fresh_service_database("workflow") as database:
        engine = sa.create_engine(database.superuser_url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE outage_records (probe_id text PRIMARY KEY)"))
        try:
            yield engine
        finally:
            engine.dispose()


def test_a_database_outage_spends_no_retries_and_dead_letters_nothing(
    vhost_uri, recorder_database, tmp_path
):
    database_url = recorder_database.url.render_as_string(hide_password=False)
    proxy = TcpProxy(recorder_database.url.port or 5432).start()
    log = tmp_path / "recorder.log"
    client = RpcClient(vhost_uri)

    def recorded(probe_id: str) -> bool:
        with recorder_database.connect() as conn:
            return bool(
                conn.execute(
                    sa.text("SELECT 1 FROM outage_records WHERE probe_id = :probe_id"),
                    {"probe_id": probe_id},
                ).first()
            )

    try:
        proxied_url = _through(proxy, database_url)
        with running(RECORDER, vhost_uri, log, tmp_path / "unused", proxied_url) as recorder:
            _wait_until_answering(client, RECORDER, recorder, log)
            before = uuid.uuid4().hex
            client.publish_event(before)
            wait_for(lambda: recorded(before), timeout=30, message="a first event recorded")

            proxy.cut()
            probe_id = uuid.uuid4().hex
            client.publish_event(probe_id)
            # It fails twice as often as its budget allows, and waits each
            # time in a delay queue (no hot loop), never in the dead one.
            dead_queue = f"{RECORDS_QUEUE}.dead"
            outcome = wait_for(
                lambda: (
                    "dead-lettered"
                    if client.depth(dead_queue)
                    else _logged(log, DEFERRED_LOG, RECORDS_QUEUE) >= 2 * RETRY_BUDGET
                    and "deferred"
                ),
                timeout=60,
                interval=0.2,
                message="the handler to fail more often than its retry budget",
            )
            assert outcome == "deferred"
            assert not recorded(probe_id)

            proxy.restore()
            wait_for(lambda: recorded(probe_id), timeout=60, message="the event recorded")
            queues = [RECORDS_QUEUE, *(f"{RECORDS_QUEUE}.retry.{ms}ms" for ms in RETRY_DELAYS_MS)]
            wait_for(
                lambda: all(client.depth(queue) == 0 for queue in queues),
                timeout=30,
                message="every queue of the consumer empty",
            )
            assert client.depth(dead_queue) == 0
            assert recorder.poll() is None
    finally:
        client.close()
        proxy.cut()
