"""RPC calls with a deadline.

nameko 2.14's RpcProxy waits for a reply for ever; every call between
services goes through `call`, so a service that does not answer becomes a
ServiceUnavailable (HTTP 503 with Retry-After at the gateway), not a
request that hangs and holds a worker; so does a call that cannot reach
the broker, or whose service lost its database or broker mid-call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import eventlet
from kombu.exceptions import OperationalError as KombuOperationalError
from nameko.exceptions import RemoteError, UnknownService

from ksmart_common import config
from ksmart_common.errors import ServiceUnavailable

T = TypeVar("T")
# Errors a called service raises when its own infrastructure fails (psycopg2's
# and SQLAlchemy's lost connection, kombu's unreachable broker): the caller
# answers 503 (try again), not 500.
UNAVAILABLE_REMOTE_ERRORS = ("OperationalError", "InterfaceError", "DisconnectionError")


def rpc_timeout() -> float:
    return float(config.env("KSMART_RPC_TIMEOUT", "10"))


def call(method: Callable[..., T], *args: Any, timeout: float | None = None, **kwargs: Any) -> T:
    try:
        with eventlet.Timeout(timeout if timeout is not None else rpc_timeout()):
            return method(*args, **kwargs)
    except eventlet.Timeout as error:
        raise ServiceUnavailable("a service did not answer in time") from error
    except UnknownService as error:
        raise ServiceUnavailable(f"a service is not running: {error}") from error
    except (KombuOperationalError, ConnectionError) as error:
        # The broker is out of reach: the request never left.
        raise ServiceUnavailable("the message broker is not reachable") from error
    except RemoteError as error:
        if error.exc_type in UNAVAILABLE_REMOTE_ERRORS:
            # The called service lost its database or broker mid-call; nothing
            # it did was committed (it commits before answering).
            raise ServiceUnavailable("a service's database or broker is not reachable") from error
        raise
