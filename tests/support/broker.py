"""A fresh RabbitMQ virtual host per test (or per module), deleted afterwards."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import quote


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def fresh_vhost() -> Iterator[str]:
    """Yields an AMQP URI on a vhost of its own."""
    vhost = f"kt-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)
