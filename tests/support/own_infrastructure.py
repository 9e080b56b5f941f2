"""A PostgreSQL cluster and a RabbitMQ node of the test's own, on spare
loopback ports, that a fault test may stop, restart and kill without
touching the machine's shared ones; and the whole platform running on them,
each process restartable after a kill -9.

PostgreSQL refuses to run as root, so initdb and the postmaster run as the
`postgres` OS user in a temporary folder it owns (trust authentication,
127.0.0.1 only, the unix socket in that folder). RabbitMQ runs as the
`rabbitmq` OS user (whose home holds the Erlang cookie rabbitmqctl uses)
under a node name of its own, registered with the machine's epmd, with its
data, logs, config and (empty) plugin list in a temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import pika
import sqlalchemy as sa

from ksmart_ops.admin import consumer_topologies
from ksmart_ops.devserver import SERVICES, start, stop, wait_for_exit
from tests.support import platform as platform_support
from tests.support.platform import Platform, free_port

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


def _as_user(user: str, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv]


def _owned_temp_dir(user: str, prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    shutil.chown(folder, user, user)
    folder.chmod(0o700)
    return folder


# -- PostgreSQL ------------------------------------------------------------------------


@dataclass
class OwnPostgres:
    folder: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            _as_user("postgres", [str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data_dir), *args]),
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.folder} -c max_connections=300"
            " -c fsync=off -c synchronous_commit=on -c full_page_writes=off"
        )
        self._pg_ctl("-w", "-t", "60", "-o", options, "-l", str(self.folder / "log"), "start")
        self.wait_until_ready()

    def stop(self, mode: str = "fast") -> None:
        """`fast` is a clean shutdown; `immediate` is a crash (recovery at start)."""
        self._pg_ctl("-w", "-m", mode, "stop")

    def restart(self, mode: str = "fast", down_seconds: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()

    def kill(self) -> None:
        """kill -9 the postmaster (its backends end with it); start() recovers."""
        pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)

    def is_running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        return pid_file.exists() and _alive(int(pid_file.read_text().split()[0]))

    def wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        engine = sa.create_engine(self.admin_url, poolclass=sa.pool.NullPool)
        try:
            while True:
                try:
                    with engine.connect() as conn:
                        conn.execute(sa.text("SELECT 1"))
                    return
                except sa.exc.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        finally:
            engine.dispose()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    folder = _owned_temp_dir("postgres", "ksmart-pg-")
    postgres = OwnPostgres(folder, free_port())
    try:
        subprocess.run(
            _as_user(
                "postgres",
                [
                    str(POSTGRES_BIN / "initdb"),
                    "-D",
                    str(postgres.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        postgres.start()
        yield postgres
    finally:
        if postgres.is_running():
            with contextlib.suppress(subprocess.SubprocessError):
                postgres.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


# -- RabbitMQ --------------------------------------------------------------------------


@dataclass
class OwnRabbit:
    folder: Path
    node: str
    port: int
    dist_port: int
    process: subprocess.Popen | None = None

    @property
    def amqp_uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def _environment(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(self.folder / "rabbit.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": "4369",
        }

    def rabbitmqctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            _as_user("rabbitmq", [str(RABBITMQ_BIN / "rabbitmqctl"), "-q", "-n", self.node, *args]),
            env=self._environment(),
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def start(self, timeout: float = 90) -> None:
        log = open(self.folder / "server.out", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            _as_user("rabbitmq", [str(RABBITMQ_BIN / "rabbitmq-server")]),
            env=self._environment(),
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.wait_until_ready(timeout)

    def wait_until_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"rabbitmq-server exited with {self.process.returncode}: "
                    + (self.folder / "server.out").read_text(errors="replace")[-2000:]
                )
            try:
                pika.BlockingConnection(pika.URLParameters(self.amqp_uri)).close()
                return
            except pika.exceptions.AMQPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def stop(self) -> None:
        try:
            self.rabbitmqctl("stop", timeout=60)
        except subprocess.SubprocessError:
            self.kill()
        if self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None

    def kill(self) -> None:
        """kill -9 the whole node (the shell wrapper and the Erlang VM)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


@contextlib.contextmanager
def own_rabbitmq() -> Iterator[OwnRabbit]:
    folder = _owned_temp_dir("rabbitmq", "ksmart-rabbit-")
    rabbit = OwnRabbit(folder, f"kt{uuid.uuid4().hex[:10]}@localhost", free_port(), free_port())
    port = rabbit.port
    (folder / "rabbitmq.conf").write_text(
        f"listeners.tcp.local = 127.0.0.1:{port}\nloopback_users.guest = true\n"
    )
    (folder / "enabled_plugins").write_text("[].\n")
    (folder / "rabbitmq-env.conf").write_text("")
    for created in ("mnesia", "log"):
        (folder / created).mkdir()
    for path in folder.iterdir():
        shutil.chown(path, "rabbitmq", "rabbitmq")
    try:
        rabbit.start()
        yield rabbit
    finally:
        if rabbit.process is not None:
            with contextlib.suppress(Exception):
                rabbit.stop()
            rabbit.kill()
        shutil.rmtree(folder, ignore_errors=True)


# -- the platform on them ----------------------------------------------------------------


@dataclass
class OwnPlatform:
    """The platform, its own PostgreSQL and RabbitMQ, and its processes."""

    platform: Platform
    postgres: OwnPostgres
    rabbit: OwnRabbit
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def kill(self, *names: str) -> None:
        """kill -9 each named process (and its process group)."""
        for name in names:
            process = self.processes[name]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def restart(self, *names: str) -> None:
        """Start the named processes again, as `running_platform` did."""
        self.processes.update(start(self.platform.run_dir, self.platform.env, names=list(names)))


@contextlib.contextmanager
def platform_on_own_infrastructure(
    tmp_dir: Path,
    environ: dict[str, str] | None = None,
    retry_delays_ms: tuple[int, ...] | None = None,
) -> Iterator[OwnPlatform]:
    """`running_platform` (every service and the relay, each its own process)
    on a PostgreSQL cluster and a RabbitMQ node of its own.

    running_platform makes its databases with KSMART_POSTGRES_ADMIN_URL's
    role; its vhost (made with the machine's rabbitmqctl) is swapped for the
    own node's default vhost, and its `start` for one that remembers the
    processes, so a test can kill -9 them. `retry_delays_ms` replaces the
    tests' short consumer back-off (its retry queues declared too)."""
    with own_postgres() as postgres, own_rabbitmq() as rabbit:
        started: dict[str, subprocess.Popen] = {}

        environ = dict(environ or {})
        if retry_delays_ms:
            environ["KSMART_RETRY_DELAYS_MS"] = ",".join(map(str, retry_delays_ms))

        @contextlib.contextmanager
        def own_vhost() -> Iterator[str]:
            if retry_delays_ms:
                for topology in consumer_topologies(retry_delays_ms):
                    topology.declare(rabbit.amqp_uri)
            yield rabbit.amqp_uri

        @contextlib.contextmanager
        def one_broker_user(amqp_uri: str) -> Iterator[dict[str, str]]:
            # The machine's rabbitmqctl reaches the machine's node, not this
            # one: every process keeps the own node's one user.
            yield {}

        def recording_start(*args, **kwargs) -> dict[str, subprocess.Popen]:
            processes = start(*args, **kwargs)
            started.update(processes)
            return processes

        with (
            mock.patch.dict(os.environ, {"KSMART_POSTGRES_ADMIN_URL": postgres.admin_url}),
            mock.patch.object(platform_support, "fresh_vhost", own_vhost),
            mock.patch.object(platform_support, "process_users", one_broker_user),
            mock.patch.object(platform_support, "start", recording_start),
            platform_support.running_platform(
                tmp_dir,
                names=(*SERVICES, "relay"),
                environ={"KSMART_POSTGRES_ADMIN_URL": postgres.admin_url, **environ},
            ) as running,
        ):
            own = OwnPlatform(running, postgres, rabbit, started)
            try:
                yield own
            finally:
                # What a test restarted is stopped too (by its pid file); the
                # databases are dropped next, so PostgreSQL must be up.
                stop(running.run_dir)
                wait_for_exit(own.processes)
                if not postgres.is_running():
                    postgres.start()
