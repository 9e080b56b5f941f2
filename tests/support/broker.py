"""A fresh RabbitMQ virtual host per test (or per module), deleted afterwards."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import quote

from ksmart_ops.broker_users import (
    MONITORING,
    PROCESSES,
    create_users,
    uri_environment,
    vhost_of,
)


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


@contextlib.contextmanager
def process_users(amqp_uri: str) -> Iterator[dict[str, str]]:
    """A RabbitMQ user per process on the URI's vhost, with its own
    permissions (ksmart_ops.broker_users), deleted afterwards. Yields each
    process's KSMART_<PROCESS>_AMQP_URI."""
    vhost = vhost_of(amqp_uri)
    users = {process: f"{vhost}-{process}" for process in (*PROCESSES, MONITORING)}
    try:
        yield uri_environment(amqp_uri, users, create_users(vhost, users))
    finally:
        # One call for all (rabbitmqctl takes seconds a call): the users go,
        # and with the vhost their permissions.
        names = ",".join(f'<<"{user}">>' for user in users.values())
        delete = 'catch rabbit_auth_backend_internal:delete_user(U, <<"ksmart-tests">>)'
        _rabbitmqctl("eval", f"[{delete} || U <- [{names}]].")
