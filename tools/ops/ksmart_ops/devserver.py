"""Start and stop the whole platform as local processes: one per service
(as they run in production), plus the relay.

    python -m ksmart_ops.devserver start RUN_DIR
    python -m ksmart_ops.devserver stop RUN_DIR

Used by `make run` / `make stop` and by the end-to-end tests.
"""

from __future__ import annotations

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
    PAYMENT_PROVIDER_ENV,
    PAYMENT_SECRET_ENV,
    FakePaymentProvider,
)
from ksmart_common import config
from ksmart_common.services import SERVICES as SERVICE_CLASSES
from ksmart_gateway.document_storage import DOCUMENTS_DIR_ENV

# Where `make run` keeps the fake payment provider's secret (ksmart-admin fake-pay reads it).
PAYMENT_SECRET_FILE = "payment-secret"
SMS_RECEIPT_SECRET_FILE = "sms-receipt-secret"
# `make run`'s phone and mailbox (ksmart_notifications.dev_inbox), on loopback.
DEV_INBOX_HTTP_PORT = 8026
DEV_INBOX_SMTP_PORT = 8025
DEV_INBOX = {
    "dev-inbox": [
        sys.executable,
        "-m",
        "ksmart_notifications.dev_inbox",
        "--sms-port",
        str(DEV_INBOX_HTTP_PORT),
        "--smtp-port",
        str(DEV_INBOX_SMTP_PORT),
    ]
}

SERVICES = tuple(SERVICE_CLASSES)
RPC_SERVICES = tuple(name for name in SERVICES if name != "gateway")


def commands() -> dict[str, list[str]]:
    python = sys.executable
    processes = {name: [python, "-m", "ksmart_common.runner", name] for name in SERVICES}
    processes["relay"] = [python, "-m", "ksmart_applications.relay_main"]
    return processes


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
        (run_dir / f"{name}.pid").write_text(str(process.pid))
        started[name] = process
    return started


def is_ready(amqp_uri: str, gateway_address: str, names=SERVICES) -> bool:
    """Every RPC service consumes its queue and the gateway answers /health."""
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
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in (processes or {}).items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see its log")
        if is_ready(amqp_uri, gateway_address, names):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the platform was not ready within {timeout}s")


def stop(run_dir: Path) -> None:
    for pid_file in sorted(run_dir.glob("*.pid")):
        pid = int(pid_file.read_text())
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        pid_file.unlink()


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
    provider; SMS and email going to the dev inbox, with the SMS provider's
    receipts coming back to the gateway. Secrets are made once under the
    run folder, readable by their owner only."""
    environ = {}
    if not os.environ.get(DOCUMENTS_DIR_ENV):
        environ[DOCUMENTS_DIR_ENV] = str((run_dir / "documents").resolve())
    if not os.environ.get(PAYMENT_PROVIDER_ENV):
        environ[PAYMENT_PROVIDER_ENV] = FakePaymentProvider.name
    if not os.environ.get(PAYMENT_SECRET_ENV):
        environ[PAYMENT_SECRET_ENV] = _secret(run_dir / PAYMENT_SECRET_FILE)
    if not os.environ.get("KSMART_SMS_URL"):
        gateway = config.env("KSMART_GATEWAY_ADDRESS", "127.0.0.1:8000")
        environ.update(
            {
                "KSMART_SMS_URL": f"http://127.0.0.1:{DEV_INBOX_HTTP_PORT}/sms",
                "KSMART_SMS_RECEIPT_URL": f"http://{gateway}/api/v1/notifications/sms-receipts",
                "KSMART_SMS_RECEIPT_SECRET": _secret(run_dir / SMS_RECEIPT_SECRET_FILE),
            }
        )
    if not os.environ.get("KSMART_SMTP_HOST"):
        environ.update(
            {
                "KSMART_SMTP_HOST": "127.0.0.1",
                "KSMART_SMTP_PORT": str(DEV_INBOX_SMTP_PORT),
                "KSMART_SMTP_SECURITY": "none",
                "KSMART_MAIL_FROM": "K-Smart <no-reply@ksmart.invalid>",
            }
        )
    return environ


def _secret(secret_file: Path) -> str:
    if not secret_file.exists():
        secret_file.touch(mode=0o600)
        secret_file.write_text(secrets.token_hex(32))
    return secret_file.read_text().strip()


def main(argv: list[str] | None = None) -> int:
    action, run_dir = (argv or sys.argv[1:])[:2]
    run_dir_path = Path(run_dir)
    if action == "stop":
        stop(run_dir_path)
        return 0
    if action == "start":
        stop(run_dir_path)  # never two platforms from one folder
        processes = start(run_dir_path, dev_environment(run_dir_path), extra=DEV_INBOX)
        address = config.env("KSMART_GATEWAY_ADDRESS", "127.0.0.1:8000")
        try:
            wait_until_ready(config.amqp_uri(), address, processes=processes)
        except (RuntimeError, TimeoutError) as error:
            print(f"{error}; logs are in {run_dir_path}/", file=sys.stderr)
            stop(run_dir_path)
            return 1
        print(f"K-Smart is running: http://{address}/api/v1  (logs in {run_dir_path}/)")
        print(
            f"SMS and mail go to the dev inbox: http://127.0.0.1:{DEV_INBOX_HTTP_PORT}/sms?to=PHONE"
            f" and /mail?to=ADDRESS"
        )
        return 0
    print("usage: devserver start|stop RUN_DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
