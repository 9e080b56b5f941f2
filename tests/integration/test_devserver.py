"""`make run` and `make stop` (python -m ksmart_ops.devserver), run as make
runs them, on databases and a vhost of their own, every port a free one: a
start either leaves the platform ready or nothing running, and names what is
in its way; a stop leaves nothing running."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from ksmart_common.config import OPS_PORTS
from ksmart_ops.devserver import DEV_INBOX, PORTAL, PORTAL_ADDRESS_ENV
from tests.support.platform import free_port, running_platform
from tests.support.processes import processes_with

# Every process the devserver starts inherits its environment: this names
# the test's own, whoever their parent is by now.
MARKER = "KSMART_DEVSERVER_TEST_RUN"


@pytest.fixture
def environment(tmp_path):
    """What `make run` would be given: running_platform's databases, vhost
    and settings (every port a free one), with no process of its own."""
    with running_platform(tmp_path / "infrastructure", names=()) as platform:
        env = {
            **os.environ,
            **platform.env,
            MARKER: uuid.uuid4().hex,
            "KSMART_DEV_INBOX_SMS_PORT": str(free_port()),
            "KSMART_DEV_INBOX_SMTP_PORT": str(free_port()),
            PORTAL_ADDRESS_ENV: f"127.0.0.1:{free_port()}",
        }
        try:
            yield env
        finally:
            # What a failing test left running ends before its databases do.
            for pid in processes_of(env):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def devserver(action: str, run_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ksmart_ops.devserver", action, str(run_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def processes_of(env: dict[str, str]) -> dict[int, str]:
    """The processes that inherited this run's environment."""
    return processes_with(MARKER, env[MARKER])


def test_a_taken_port_is_named_with_its_holder_and_nothing_starts(environment, tmp_path):
    run_dir = tmp_path / "run"
    with socket.socket() as squatter:  # another checkout's workflow, say
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = {**environment, "KSMART_OPS_ADDRESS_WORKFLOW": f"127.0.0.1:{port}"}
        started = devserver("start", run_dir, env)

    assert started.returncode == 1, started.stdout
    assert (
        f"workflow cannot start: port {port} is in use by process {os.getpid()}"
        f" ({' '.join(_own_command())}); stop that, or set KSMART_OPS_ADDRESS_WORKFLOW"
    ) in started.stderr
    assert not list(run_dir.glob("*.log")), "a process was started"
    assert not processes_of(env)


def test_a_process_failing_while_the_others_start_takes_them_all_down(environment, tmp_path):
    run_dir = tmp_path / "run"
    # The applications service refuses to start; the others start meanwhile.
    env = {**environment, "KSMART_PAYMENT_PROVIDER": "no-such-provider"}
    started = devserver("start", run_dir, env)

    assert started.returncode == 1, started.stdout
    assert "applications exited with 1; see its log" in started.stderr
    assert "no-such-provider" in (run_dir / "applications.log").read_text()
    assert {log.stem for log in run_dir.glob("*.log")} == {*OPS_PORTS, PORTAL, DEV_INBOX}
    # Stopped and ended before the command returned: nothing for `make stop`.
    assert not processes_of(env)
    assert not list(run_dir.glob("*.pid"))
    assert devserver("stop", run_dir, env).returncode == 0


def test_make_stop_ends_every_process_that_make_run_started(environment, tmp_path):
    run_dir = tmp_path / "run"
    started = devserver("start", run_dir, environment)
    assert started.returncode == 0, started.stderr
    assert "K-Smart is running" in started.stdout
    running = processes_of(environment)
    # A process for each service and the relay, the dev inbox, and the
    # portal's gunicorn (its master and workers).
    commands = list(running.values())
    for name in (*OPS_PORTS, "ksmart_ops.dev_checkout", "ksmart_portal.wsgi"):
        assert any(name in command for command in commands), (name, commands)
    assert len(running) >= len(OPS_PORTS) + 2, running
    # The dev inbox serves the test payment provider's page, which takes no
    # link it did not sign.
    checkout = f"http://127.0.0.1:{environment['KSMART_DEV_INBOX_SMS_PORT']}/checkout"
    assert requests.get(f"{checkout}?amount_paise=1", timeout=10).status_code == 403

    stopped = devserver("stop", run_dir, environment)
    assert stopped.returncode == 0, stopped.stderr
    assert not processes_of(environment)
    assert not list(run_dir.glob("*.pid"))


def _own_command() -> list[str]:
    return [word.decode() for word in Path("/proc/self/cmdline").read_bytes().split(b"\0") if word]
