"""Start and stop the whole platform as local processes: one per service
(as they run in production), the relay, the portal and the dev inbox.

    python -m ksmart_ops.devserver start RUN_DIR
    python -m ksmart_ops.devserver stop RUN_DIR

Used by `make run` / `make stop` and by the end-to-end tests. RUN_DIR keeps
each process's log and pid file and the development secrets.

A start either leaves the whole platform running and ready or nothing at
all: a port already taken is named, with the process holding it, before
anything starts; a process that exits while the others start, or a platform
not ready in time, stops every process started. A stop waits for each
process to end (killing one still running after 20 seconds) and forgets its
pid file only then, so `make stop` can always finish what it began.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import pika

from ksmart_applications.payments import (
    CHECKOUT_URL_ENV,
    PAYMENT_PROVIDER_ENV,
    PAYMENT_SECRET_ENV,
    FakePaymentProvider,
)
from ksmart_common import config
from ksmart_common.services import SERVICES as SERVICE_CLASSES
from ksmart_gateway.document_storage import DOCUMENTS_DIR_ENV
from ksmart_gateway.return_urls import RETURN_ORIGINS_ENV
from ksmart_ops.actor_keys import actor_key_environment
from ksmart_ops.broker_users import development_users
from ksmart_ops.dev_checkout import CHECKOUT_PATH
from ksmart_ops.event_key import event_key_environment
from ksmart_ops.key_root import anchor_development_keys, key_root_environment
from ksmart_ops.log_key import log_key_environment
from ksmart_ops.ports import listen_problem
from ksmart_ops.run_files import made_once

# Where `make run` keeps the fake payment provider's secret (ksmart-admin fake-pay reads it).
PAYMENT_SECRET_FILE = "payment-secret"
SMS_RECEIPT_SECRET_FILE = "sms-receipt-secret"
# `make run`'s phone and mailbox (ksmart_notifications.dev_inbox), on loopback,
# with the fake payment provider's checkout page (ksmart_ops.dev_checkout);
# another port each where these are taken (Mailpit, say, on 8025).
DEV_INBOX = "dev-inbox"
DEV_INBOX_SMS_PORT_ENV = "KSMART_DEV_INBOX_SMS_PORT"
DEV_INBOX_SMTP_PORT_ENV = "KSMART_DEV_INBOX_SMTP_PORT"
DEV_INBOX_SMS_PORT = 8026
DEV_INBOX_SMTP_PORT = 8025
STOP_GRACE_SECONDS = 20.0
# The web pages (ksmart_portal), a client of the gateway's API, under gunicorn.
PORTAL = "portal"
PORTAL_ADDRESS_ENV = "KSMART_PORTAL_ADDRESS"
PORTAL_ADDRESS = "127.0.0.1:8080"
PORTAL_SECRET_FILE = "portal-secret"

SERVICES = tuple(SERVICE_CLASSES)
RPC_SERVICES = tuple(name for name in SERVICES if name != "gateway")


def commands() -> dict[str, list[str]]:
    python = sys.executable
    processes = {name: [python, "-m", "ksmart_common.runner", name] for name in SERVICES}
    processes["relay"] = [python, "-m", "ksmart_applications.relay_main"]
    return processes


def dev_inbox_ports(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """(SMS over HTTP, SMTP)."""
    return (
        int(config.env(DEV_INBOX_SMS_PORT_ENV, str(DEV_INBOX_SMS_PORT), environ)),
        int(config.env(DEV_INBOX_SMTP_PORT_ENV, str(DEV_INBOX_SMTP_PORT), environ)),
    )


def dev_inbox(environ: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    sms_port, smtp_port = dev_inbox_ports(environ)
    return {
        DEV_INBOX: [
            sys.executable,
            "-m",
            "ksmart_ops.dev_checkout",
            "--sms-port",
            str(sms_port),
            "--smtp-port",
            str(smtp_port),
        ]
    }


def portal_address(environ: Mapping[str, str] | None = None) -> str:
    return config.env(PORTAL_ADDRESS_ENV, PORTAL_ADDRESS, environ)


def portal(environ: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """The portal's process: gunicorn, as in its container. It reads the
    gateway's URL and its secret key from the environment
    (ksmart_portal.settings)."""
    return {
        PORTAL: [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            portal_address(environ),
            "--workers",
            "2",
            # A page mostly waits on the gateway: a worker's threads overlap
            # those waits (and share its HTTP cache), as in the container.
            "--threads",
            "8",
            "--access-logfile",
            "-",
            "ksmart_portal.wsgi:app",
        ]
    }


def portal_origins(environ: Mapping[str, str] | None = None) -> list[str]:
    """Where a browser reaches the portal: its address, and on loopback by
    the name localhost too (a payment's return must land where the session
    cookie is)."""
    host, port = _host_port(portal_address(environ))
    origins = [f"http://{host}:{port}"]
    if host == "127.0.0.1":
        origins.append(f"http://localhost:{port}")
    return origins


def portal_environment(run_dir: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the portal needs: where the gateway is, and a secret key made
    once under the run folder (never in the repository)."""
    return {
        "KSMART_PORTAL_GATEWAY_URL": f"http://{config.gateway_address(environ)}",
        "KSMART_PORTAL_SECRET_KEY": _secret(run_dir / PORTAL_SECRET_FILE),
        "KSMART_PORTAL_DEVELOPMENT": "1",
    }


def portal_is_ready(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/health", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def listening_addresses(
    names: list[str], environ: Mapping[str, str]
) -> list[tuple[str, str, str, int]]:
    """What each named process listens on: (process, the setting that moves
    it, host, port)."""
    addresses = []
    for name in names:
        if name in config.OPS_PORTS:
            setting = f"KSMART_OPS_ADDRESS_{name.upper()}"
            addresses.append((name, setting, *_host_port(config.ops_address(name, environ))))
        if name == "gateway":
            address = config.gateway_address(environ)
            addresses.append((name, "KSMART_GATEWAY_ADDRESS", *_host_port(address)))
        if name == PORTAL:
            addresses.append((name, PORTAL_ADDRESS_ENV, *_host_port(portal_address(environ))))
        if name == DEV_INBOX:
            sms_port, smtp_port = dev_inbox_ports(environ)
            addresses.append((name, DEV_INBOX_SMS_PORT_ENV, "127.0.0.1", sms_port))
            addresses.append((name, DEV_INBOX_SMTP_PORT_ENV, "127.0.0.1", smtp_port))
    return addresses


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def ports_in_the_way(names: list[str], environ: Mapping[str, str]) -> list[str]:
    """Each address a named process needs and cannot have, with who holds it."""
    problems = []
    for name, setting, host, port in listening_addresses(names, environ):
        problem = listen_problem(host, port)
        if problem is not None:
            problems.append(f"{name} cannot start: {problem}; stop that, or set {setting}")
    return problems


def start(
    run_dir: Path,
    environ: Mapping[str, str] | None = None,
    names: list[str] | None = None,
    extra: Mapping[str, list[str]] | None = None,
) -> dict[str, subprocess.Popen]:
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **(environ or {})}
    started = {}
    for name, argv in {**commands(), **(extra or {})}.items():
        if names is not None and name not in names:
            continue
        log = open(run_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        process = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _write_pid_file(run_dir / f"{name}.pid", process.pid)
        started[name] = process
    return started


def is_ready(
    amqp_uri: str, gateway_address: str, names=SERVICES, environ: Mapping[str, str] | None = None
) -> bool:
    """Every RPC service consumes its queue, the gateway answers /health,
    and so does the portal when it is one of them."""
    if PORTAL in names and not portal_is_ready(portal_address(environ)):
        return False
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        for name in names:
            if name not in RPC_SERVICES:
                continue
            channel = connection.channel()
            try:
                declared = channel.queue_declare(f"rpc-{name}", passive=True)
            except pika.exceptions.ChannelClosedByBroker:
                return False
            if declared.method.consumer_count < 1:
                return False
            channel.close()
    finally:
        connection.close()
    if "gateway" in names:
        try:
            with urllib.request.urlopen(f"http://{gateway_address}/health", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False
    return True


def wait_until_ready(
    amqp_uri: str,
    gateway_address: str,
    timeout: float = 60.0,
    processes: Mapping[str, subprocess.Popen] | None = None,
    names=SERVICES,
    environ: Mapping[str, str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in (processes or {}).items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see its log")
        if is_ready(amqp_uri, gateway_address, names, environ):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the platform was not ready within {timeout}s")


def stop(
    run_dir: Path,
    processes: Mapping[str, subprocess.Popen] | None = None,
    grace: float = STOP_GRACE_SECONDS,
) -> list[str]:
    """Stop every process with a pid file in run_dir (its process group):
    SIGTERM, then SIGKILL for one still running after `grace` seconds. A pid
    file goes only once its process has ended; returns the names of any
    that would not (their pid files stay for the next stop)."""
    own = {process.pid: process for process in (processes or {}).values()}
    running = {}
    for pid_file in sorted(run_dir.glob("*.pid")):
        pid = _live_pid(pid_file)
        if pid is not None and _signal_group(pid, signal.SIGTERM):
            running[pid_file] = pid
        else:
            pid_file.unlink()
    _forget_when_ended(running, own, grace)
    for pid in running.values():
        _signal_group(pid, signal.SIGKILL)
    _forget_when_ended(running, own, 10.0)
    return [pid_file.stem for pid_file in running]


def _write_pid_file(path: Path, pid: int) -> None:
    """The pid and the moment its process started, so that a later stop can
    tell our process from another that was given the same pid since (after
    a reboot, or a long while)."""
    path.write_text(f"{pid} {_start_time(pid) or ''}".strip())


def _live_pid(pid_file: Path) -> int | None:
    """The pid file's process if it is still the one we started; None for a
    stale file (gone, or the pid now belongs to another process)."""
    try:
        pid_text, _, started = pid_file.read_text().strip().partition(" ")
        pid = int(pid_text)
    except ValueError:
        return None
    now = _start_time(pid)
    if now is None or (started and now != started):
        return None
    return pid


def _start_time(pid: int) -> str | None:
    """When a process started, in clock ticks since boot (/proc/<pid>/stat,
    field 22); None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    return stat.rpartition(")")[2].split()[19]


def _forget_when_ended(
    running: dict[Path, int], own: Mapping[int, subprocess.Popen], timeout: float
) -> None:
    """Remove each pid file (and its entry) once its process has ended."""
    deadline = time.monotonic() + timeout
    while running:
        for pid_file, pid in list(running.items()):
            if _has_ended(pid, own.get(pid)):
                pid_file.unlink()
                del running[pid_file]
        if not running or time.monotonic() >= deadline:
            return
        time.sleep(0.1)


def _signal_group(pid: int, signal_number: int) -> bool:
    """False when there is no such process group any more."""
    try:
        os.killpg(pid, signal_number)
    except ProcessLookupError:
        return False
    return True


def _has_ended(pid: int, process: subprocess.Popen | None) -> bool:
    if process is not None:  # a child of this process: reap it
        return process.poll() is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie has ended; its parent has not collected it yet
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def wait_for_exit(processes: Mapping[str, subprocess.Popen], timeout: float = 20.0) -> None:
    """Wait for each process to end after it was asked to; kill a stuck one."""
    for process in processes.values():
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def dev_environment(run_dir: Path) -> dict[str, str]:
    """What a development platform needs beyond the defaults, unless the
    environment names its own: a documents folder; the fake payment
    provider, paid on the dev inbox's checkout page, which sends the
    citizen back to the portal; SMS and email going to the dev inbox, with
    the SMS provider's receipts coming back to the gateway. Secrets are
    made once under the run folder, readable by their owner only."""
    environ = {}
    sms_port, smtp_port = dev_inbox_ports()
    if not os.environ.get(DOCUMENTS_DIR_ENV):
        environ[DOCUMENTS_DIR_ENV] = str((run_dir / "documents").resolve())
    if not os.environ.get(PAYMENT_PROVIDER_ENV):
        environ[PAYMENT_PROVIDER_ENV] = FakePaymentProvider.name
    if not os.environ.get(PAYMENT_SECRET_ENV):
        environ[PAYMENT_SECRET_ENV] = _secret(run_dir / PAYMENT_SECRET_FILE)
    if not os.environ.get(CHECKOUT_URL_ENV):
        environ[CHECKOUT_URL_ENV] = f"http://127.0.0.1:{sms_port}{CHECKOUT_PATH}"
    if not os.environ.get(RETURN_ORIGINS_ENV):
        environ[RETURN_ORIGINS_ENV] = ",".join(portal_origins())
    if not os.environ.get("KSMART_SMS_URL"):
        gateway = config.gateway_address()
        environ.update(
            {
                "KSMART_SMS_URL": f"http://127.0.0.1:{sms_port}/sms",
                "KSMART_SMS_RECEIPT_URL": f"http://{gateway}/api/v1/notifications/sms-receipts",
                "KSMART_SMS_RECEIPT_SECRET": _secret(run_dir / SMS_RECEIPT_SECRET_FILE),
            }
        )
    if not os.environ.get("KSMART_SMTP_HOST"):
        environ.update(
            {
                "KSMART_SMTP_HOST": "127.0.0.1",
                "KSMART_SMTP_PORT": str(smtp_port),
                "KSMART_SMTP_SECURITY": "none",
                "KSMART_MAIL_FROM": "K-Smart <no-reply@ksmart.invalid>",
            }
        )
    return environ


def _secret(secret_file: Path) -> str:
    return made_once(secret_file, lambda: secrets.token_hex(32)).strip()


def start_platform(
    run_dir: Path,
    environ: Mapping[str, str] | None = None,
    extra: Mapping[str, list[str]] | None = None,
    timeout: float = 60.0,
) -> bool:
    """Start every process and wait until the platform is ready: True. Else
    say why on stderr, leave nothing running and return False."""
    env = {**os.environ, **(environ or {})}
    names = [*commands(), *(extra or {})]
    in_the_way = ports_in_the_way(names, env)
    if in_the_way:
        print("\n".join(in_the_way), file=sys.stderr)
        return False
    processes = start(run_dir, environ, extra=extra)
    ready = False
    try:
        wait_until_ready(
            config.amqp_uri(env),
            config.gateway_address(env),
            timeout,
            processes=processes,
            names=(*SERVICES, *(name for name in (extra or {}) if name == PORTAL)),
            environ=env,
        )
        ready = True
    except (RuntimeError, TimeoutError, pika.exceptions.AMQPError) as error:
        reason = str(error) or type(error).__name__
        print(f"{reason}; logs are in {run_dir}/", file=sys.stderr)
    finally:  # an interrupt (Ctrl-C) too leaves nothing running
        if not ready:
            not_stopped = stop(run_dir, processes)
            if not_stopped:
                print(f"could not stop {', '.join(not_stopped)}", file=sys.stderr)
            # A port taken after the check above: its holder, now ours are gone.
            for problem in ports_in_the_way(names, env):
                print(problem, file=sys.stderr)
    return ready


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ksmart_ops.devserver",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="make run uses var/run")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir
    if args.action == "stop":
        not_stopped = stop(run_dir)
        if not_stopped:
            print(f"could not stop {', '.join(not_stopped)}", file=sys.stderr)
        return 1 if not_stopped else 0
    if stop(run_dir):  # never two platforms from one folder
        print(f"an earlier platform from {run_dir}/ would not stop", file=sys.stderr)
        return 1
    run_dir.mkdir(parents=True, exist_ok=True)
    environ = {
        **dev_environment(run_dir),
        **portal_environment(run_dir),
        **log_key_environment(run_dir),
        **event_key_environment(run_dir),
        **key_root_environment(run_dir),
        **actor_key_environment(run_dir),
        **development_users(run_dir),
    }
    key_databases = {name: config.database_url(name) for name in ("identity", "applications")}
    anchor_development_keys(run_dir, key_databases, {**os.environ, **environ})
    if not start_platform(run_dir, environ, extra={**portal(), **dev_inbox()}):
        return 1
    sms_port, _ = dev_inbox_ports()
    print(f"K-Smart is running: http://{portal_address()}/  (logs in {run_dir}/)")
    print(f"Its API: http://{config.gateway_address()}/api/v1")
    print(
        f"SMS and mail go to the dev inbox: http://127.0.0.1:{sms_port}/sms?to=PHONE"
        f" and /mail?to=ADDRESS"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
