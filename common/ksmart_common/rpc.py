"""RPC calls with a deadline.

nameko 2.14's RpcProxy waits for a reply for ever; every call between
services goes through `call`, so a service that does not answer becomes a
ServiceUnavailable (HTTP 503 with Retry-After at the gateway), not a
request that hangs and holds a worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import eventlet
from nameko.exceptions import UnknownService

from ksmart_common import config
from ksmart_common.errors import ServiceUnavailable

T = TypeVar("T")


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
