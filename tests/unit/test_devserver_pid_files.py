"""`make stop` signals only the processes `make run` started: a pid file
whose pid now belongs to another process (after a reboot, or a long while)
is stale, and that process is left alone."""

from __future__ import annotations

import subprocess

import pytest

from ksmart_ops import devserver


@pytest.fixture
def bystander():
    """A process in a group of its own that nobody asked us to stop."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def test_a_pid_now_given_to_another_process_is_not_signalled(tmp_path, bystander):
    pid_file = tmp_path / "workflow.pid"
    pid_file.write_text(f"{bystander.pid} 1")  # it started at tick 1: not this process
    assert devserver.stop(tmp_path, grace=1.0) == []
    assert bystander.poll() is None, "an unrelated process was signalled"
    assert not pid_file.exists(), "the stale pid file is gone"


def test_the_process_a_pid_file_names_is_stopped(tmp_path, bystander):
    devserver._write_pid_file(tmp_path / "workflow.pid", bystander.pid)
    assert devserver.stop(tmp_path, grace=5.0) == []
    assert bystander.wait(timeout=10) is not None
    assert not (tmp_path / "workflow.pid").exists()


@pytest.mark.parametrize("content", ["", "not a pid", "999999999 123"])
def test_an_unreadable_or_dead_pid_file_is_removed(tmp_path, content):
    (tmp_path / "relay.pid").write_text(content)
    assert devserver.stop(tmp_path, grace=1.0) == []
    assert not (tmp_path / "relay.pid").exists()
