"""RPC between services: calls with a deadline, and the `rpc` entrypoint.

nameko 2.14's RpcProxy waits for a reply for ever; every call between
services goes through `call`, so a service that does not answer becomes a
ServiceUnavailable (HTTP 503 with Retry-After at the gateway), not a
request that hangs and holds a worker; so does a call that cannot reach
the broker, or whose service lost its database or broker mid-call.

Every service's RPC methods use `rpc` from here, not nameko's. nameko's
entrypoint publishes the reply inside the worker's thread, after the method
returned, and an error there (the broker down for longer than the
publisher's retries) escapes the thread and kills the container: a broker
restart made service processes exit. Here a reply that cannot reach the
broker ends that call only: the caller's deadline answers it (503), and the
process keeps consuming once the broker is back.

The actor of a command crosses here signed (ksmart_common.actor_assertions):
`call` signs an ActingAs argument for the one method it is sent to, and the
`rpc` entrypoint verifies a method's `actor` argument before the worker
starts, handing the method the verified actor; a refused one never runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import eventlet
from kombu.exceptions import OperationalError as KombuOperationalError
from nameko.exceptions import RemoteError, UnknownService, deserialize_to_instance
from nameko.rpc import Rpc as NamekoRpc
from nameko.rpc import RpcConsumer as NamekoRpcConsumer

from ksmart_common import config
from ksmart_common.actor_assertions import GATEWAY, ActingAs, process_signer, process_verifier
from ksmart_common.errors import REMOTE_ERRORS, ServiceUnavailable, Unauthenticated
from ksmart_common.logging import get_logger
from ksmart_common.outages import is_broker_outage
from ksmart_common.queue_consumer import OutageTolerantQueueConsumer

log = get_logger(__name__)

# The platform's errors cross RPC as their own types (ksmart_common.errors):
# registered here, where nameko is, so that the errors module stays pure.
for _error in REMOTE_ERRORS:
    deserialize_to_instance(_error)

T = TypeVar("T")
# Errors a called service raises when its own infrastructure fails (psycopg2's
# and SQLAlchemy's lost connection, kombu's unreachable broker): the caller
# answers 503 (try again), not 500.
UNAVAILABLE_REMOTE_ERRORS = ("OperationalError", "InterfaceError", "DisconnectionError")


def rpc_timeout() -> float:
    return float(config.env("KSMART_RPC_TIMEOUT", "10"))


def call(method: Callable[..., T], *args: Any, timeout: float | None = None, **kwargs: Any) -> T:
    args, kwargs = signed_actors(method, args, kwargs)
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


def signed_actors(
    method: Callable, args: tuple, kwargs: dict[str, Any]
) -> tuple[tuple, dict[str, Any]]:
    """The arguments with each ActingAs replaced by an assertion signed by
    this process for `method` (a nameko method proxy: it names the service
    and method called, and the worker whose request id it carries)."""
    if not any(isinstance(value, ActingAs) for value in (*args, *kwargs.values())):
        return args, kwargs
    worker_ctx = method.worker_ctx
    issuer = worker_ctx.container.service_name
    signer = process_signer(issuer)
    if signer is None:
        raise RuntimeError(f"{issuer} has no key to sign actors with; set its actor key")
    request_id = (worker_ctx.context_data or {}).get("request_id")

    def sign(value: Any) -> Any:
        if not isinstance(value, ActingAs):
            return value
        return signer.sign(value.actor, method.service_name, method.method_name, request_id)

    return tuple(map(sign, args)), {name: sign(value) for name, value in kwargs.items()}


class RpcConsumer(NamekoRpcConsumer):
    """nameko's, except that a reply the broker cannot take fails the call,
    not the container."""

    queue_consumer = OutageTolerantQueueConsumer()

    def handle_result(self, message, result, exc_info):
        try:
            return super().handle_result(message, result, exc_info)
        except Exception as error:
            if not is_broker_outage(error):
                raise
            log.warning(
                "reply not sent: the broker is not reachable; the caller's deadline answers it",
                method=message.delivery_info.get("routing_key"),
                error=repr(error),
            )
            # The request is done with (its caller gives up at its deadline):
            # acknowledged if its channel still works, else the broker
            # redelivers it and it is answered to nobody.
            self.queue_consumer.ack_message(message)
            return result, exc_info


class Rpc(NamekoRpc):
    """nameko's, with the method's `actor` argument verified first.
    `actor_signers`: whose assertions the method takes (the gateway's, unless
    it names a service that forwards an actor to it)."""

    rpc_consumer = RpcConsumer()

    def __init__(self, *, actor_signers: tuple[str, ...] = (GATEWAY,), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.actor_signers = tuple(actor_signers)

    def handle_message(self, body, message):
        if isinstance(body, dict) and "args" in body and "kwargs" in body:
            args, kwargs = self.with_verified_actor(body["args"], body["kwargs"])
            body = {**body, "args": args, "kwargs": kwargs}
        super().handle_message(body, message)

    def with_verified_actor(self, args: list, kwargs: dict) -> tuple[list, dict]:
        method = getattr(self.container.service_cls, self.method_name)
        signature = inspect.signature(method)
        if "actor" not in signature.parameters:
            return args, kwargs
        try:
            bound = signature.bind(None, *args, **kwargs)
        except TypeError:
            return args, kwargs  # nameko's own check answers IncorrectSignature
        if "actor" not in bound.arguments:
            return args, kwargs
        service = self.container.service_name
        try:
            bound.arguments["actor"] = process_verifier().verify(
                bound.arguments["actor"], service, self.method_name, self.actor_signers
            )
        except Unauthenticated as refusal:
            log.warning("actor refused", method=self.method_name, reason=refusal.detail)
            raise
        return list(bound.args[1:]), bound.kwargs


rpc = Rpc.decorator
