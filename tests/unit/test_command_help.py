"""Every command the project installs answers --help with its usage and does
nothing else: no connection, no process, no file, no port. (`ksmart-relay
--help` once started the relay.)

The commands are the [project.scripts] of the three distributions, and the
two modules run with `python -m`. Each runs as a user runs it, in an empty
folder, with the database and the broker pointed at a port nobody listens
on, so a command that starts anyway cannot touch this machine's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

from tests.support.processes import processes_with

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = ("pyproject.toml", "common/pyproject.toml", "tools/audit/pyproject.toml")
MODULES = ("ksmart_common.runner", "ksmart_ops.devserver")
# Each needs well under a second; the rest is room for a busy machine.
PROMPTLY_SECONDS = 30
NOWHERE = "127.0.0.1:1"
MARKER = "KSMART_HELP_TEST_RUN"


def commands() -> dict[str, list[str]]:
    """Each command as its usage names it, with how to run it."""
    found = {}
    for distribution in DISTRIBUTIONS:
        project = tomllib.loads((ROOT / distribution).read_text())["project"]
        for script in project.get("scripts", {}):
            found[script] = [str(Path(sys.executable).parent / script)]
    for module in MODULES:
        found[f"python -m {module}"] = [sys.executable, "-m", module]
    return found


def test_the_installed_commands_are_found():
    assert {"ksmart-admin", "ksmart-relay", "ksmart-audit"} <= set(commands())


def test_every_command_answers_help_with_its_usage_and_starts_nothing(tmp_path):
    marker = uuid.uuid4().hex
    env = {name: value for name, value in os.environ.items() if not name.startswith("KSMART_")}
    env.update(
        {
            MARKER: marker,
            "KSMART_AMQP_URI": f"amqp://{NOWHERE}/",
            "KSMART_POSTGRES_ADMIN_URL": f"postgresql://postgres@{NOWHERE}/postgres",
            "KSMART_RELAY_DATABASE_URL": f"postgresql://ksmart_relay@{NOWHERE}/nowhere",
            "KSMART_OPS_ADDRESS": "127.0.0.1:0",
            "KSMART_GATEWAY_ADDRESS": "127.0.0.1:0",
        }
    )
    # All at once: each imports its frameworks, which takes a moment.
    launched = {}
    for name, argv in commands().items():
        folder = tmp_path / name.replace(" ", "_")
        folder.mkdir()
        launched[name] = subprocess.Popen(
            [*argv, "--help"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    problems = []
    for name, process in launched.items():
        try:
            out, err = process.communicate(timeout=PROMPTLY_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            problems.append(f"{name} --help still ran after {PROMPTLY_SECONDS}s")
            continue
        if process.returncode != 0:
            problems.append(f"{name} --help exited with {process.returncode}: {err[-300:]}")
        if not out.startswith(f"usage: {name} "):
            problems.append(f"{name} --help printed no usage of {name}: {out[:200]!r}")
        if err.strip():
            problems.append(f"{name} --help said on stderr: {err[-300:]}")
        left = sorted(path.name for path in (tmp_path / name.replace(" ", "_")).iterdir())
        if left:
            problems.append(f"{name} --help made {left}")
    for pid, command in processes_with(MARKER, marker).items():
        os.kill(pid, signal.SIGKILL)
        problems.append(f"still running after --help: {pid} {command}")
    assert not problems, "\n".join(problems)


def test_the_runner_runs_exactly_one_named_service():
    """Each service has its own database and settings: none named, two, or
    an unknown one is a usage error, before anything starts."""
    for arguments in ([], ["applications", "workflow"], ["nonesuch"]):
        ran = subprocess.run(
            [sys.executable, "-m", "ksmart_common.runner", *arguments],
            capture_output=True,
            text=True,
            timeout=PROMPTLY_SECONDS,
        )
        assert ran.returncode == 2, (arguments, ran.stderr)
        assert "usage: python -m ksmart_common.runner" in ran.stderr
