"""One RabbitMQ user per process, allowed only its own queues and the
exchanges it must use (issue 18: before, every process shared one user,
so any of them could call any RPC method or consume any queue).

RabbitMQ grants per virtual host, by resource name (three regexes:
configure, write, read), and, on a topic exchange, by routing key (topic
permissions: write for publishing, read for binding). nameko's RPC is one
topic exchange, `nameko-rpc`, with the routing key `<service>.<method>`, so
the topic permissions say which methods a process may call: the
notifications service's user cannot publish `applications.take_action`
(the broker closes the channel: ACCESS_REFUSED), nor bind a queue to
another service's requests. What nameko needs, from its source
(nameko.rpc):

- a service consumes `rpc-<service>`, bound with `<service>.*`;
- a caller declares `rpc.reply-<service>-<uuid>` (a standalone proxy:
  `rpc.reply-standalone_rpc_proxy-<uuid>`), bound with the uuid, and a
  reply is published to `nameko-rpc` with that uuid as its routing key;
- every process declares `nameko-rpc` (configure) whenever it connects.

An event consumer owns the queues named after it (`workflow.*`,
`notifications.*`: main, retry and dead-letter queues) and binds them to
`applications.events` (read); it moves a failing message to its retry queue
through the default exchange, as the notifications service hands deliveries
over (write on `amq.default`). The relay only publishes events, and the
identity service only its own `identity.events`.

RabbitMQ has no "declare but not delete" permission: configure on a shared
exchange, which nameko and kombu declare on every connection, also lets its
holder delete it (an outage, never a forged message). Nor can the default
exchange be limited by routing key: a consumer's user could put a message
on another service's queue by name. An RPC queue dispatches by routing
key (`<service>.<method>`), which is then the queue's name, so such a
message reaches no method; an event queue's consumer checks each event
against the store's stream (gap filling) only when versions skip.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ksmart_common import config
from ksmart_common.services import SERVICES

RPC_EXCHANGE = "nameko-rpc"
EVENTS_EXCHANGE = "applications.events"
IDENTITY_EVENTS_EXCHANGE = "identity.events"
DEFAULT_EXCHANGE = "amq.default"
# A reply's routing key: the reply queue's uuid (nameko.rpc.ReplyListener).
REPLY_KEY = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ANY_METHOD = "[a-z_][a-z0-9_]*"
RPC_SERVICES = tuple(name for name in SERVICES if name != "gateway")
# Every process that connects to the broker, each with a user of its own.
PROCESSES = (*SERVICES, "relay")
# KEDA reads queue depths (a passive declare) and nothing else.
MONITORING = "monitoring"

# Which methods each process calls, on which service (a unit test checks
# these against each service's code): the gateway, the public API, calls any.
CALLS: dict[str, dict[str, tuple[str, ...]]] = {
    "gateway": {service: (ANY_METHOD,) for service in RPC_SERVICES},
    "applications": {
        "catalogue": ("get_service", "get_definition"),
        "identity": ("get_local_body", "get_official", "verify_consent"),
    },
    "workflow": {"applications": ("read_stream", "escalate")},
    "notifications": {
        "applications": ("read_stream",),
        "catalogue": ("get_definition",),
        "identity": ("get_local_body", "contact"),
    },
    "identity": {},
    "catalogue": {},
    "checkpointer": {},
    "relay": {},
}
# The queues a consumer owns are named after it.
CONSUMERS = ("workflow", "notifications")


@dataclass(frozen=True)
class Grant:
    """What one user may do in the platform's vhost: resource regexes and
    topic permissions on the RPC exchange (None: no RPC)."""

    configure: str
    write: str
    read: str
    rpc_write: str | None = None
    rpc_read: str | None = None


def _any_of(*names: str) -> str:
    return "^(" + "|".join(names) + ")$" if names else "^$"


def grant(process: str) -> Grant:
    if process == MONITORING:
        return Grant("^$", "^$", "^$")
    if process == "relay":
        exchange = re.escape(EVENTS_EXCHANGE)
        return Grant(_any_of(exchange), _any_of(exchange), "^$")
    reply_queues = [re.escape(f"rpc.reply-{process}-") + ".*"]
    if process == "gateway":  # its token-key fetches use a standalone proxy
        reply_queues.append(re.escape("rpc.reply-standalone_rpc_proxy-") + ".*")
    own = [re.escape(RPC_EXCHANGE), *reply_queues]
    extra_write: list[str] = []
    rpc_read = [REPLY_KEY]
    if process in RPC_SERVICES:
        own.append(re.escape(f"rpc-{process}"))
        rpc_read.append(re.escape(f"{process}.*"))
    read = list(own)
    if process in CONSUMERS:
        own.append(re.escape(f"{process}.") + ".*")
        read += [re.escape(f"{process}.") + ".*", re.escape(EVENTS_EXCHANGE)]
        extra_write.append(re.escape(DEFAULT_EXCHANGE))
        if process == "notifications":  # its codes' queue is bound to identity's events
            read.append(re.escape(IDENTITY_EVENTS_EXCHANGE))
    configure = list(own)
    if process in CONSUMERS:
        configure.append(re.escape(EVENTS_EXCHANGE))  # declared by the consumer's topology
    if process == "identity":
        configure.append(re.escape(IDENTITY_EVENTS_EXCHANGE))
        extra_write.append(re.escape(IDENTITY_EVENTS_EXCHANGE))
    if process == "notifications":
        configure.append(re.escape(IDENTITY_EVENTS_EXCHANGE))
    calls = [
        f"{re.escape(service)}\\.({'|'.join(methods)})"
        for service, methods in CALLS.get(process, {}).items()
    ]
    return Grant(
        configure=_any_of(*configure),
        write=_any_of(*own, *extra_write),
        read=_any_of(*read),
        rpc_write=_any_of(*calls, REPLY_KEY),
        rpc_read=_any_of(*rpc_read),
    )


def definitions(
    vhost: str, users: Mapping[str, str], passwords: Mapping[str, str]
) -> dict[str, Any]:
    """RabbitMQ definitions (users, permissions, topic permissions) for each
    process's user in `vhost`: one `rabbitmqctl import_definitions` makes or
    updates them all. users, passwords: process -> user name, password."""
    document: dict[str, list] = {"users": [], "permissions": [], "topic_permissions": []}
    for process, user in users.items():
        document["users"].append(
            {
                "name": user,
                "password_hash": password_hash(passwords[process]),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["monitoring"] if process == MONITORING else [],
            }
        )
        rights = grant(process)
        document["permissions"].append(
            {
                "user": user,
                "vhost": vhost,
                "configure": rights.configure,
                "write": rights.write,
                "read": rights.read,
            }
        )
        if rights.rpc_write is not None:
            document["topic_permissions"].append(
                {
                    "user": user,
                    "vhost": vhost,
                    "exchange": RPC_EXCHANGE,
                    "write": rights.rpc_write,
                    "read": rights.rpc_read,
                }
            )
    return document


def password_hash(password: str) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def import_definitions(document: Mapping[str, Any]) -> None:
    """Through rabbitmqctl (the management plugin need not be enabled),
    on its standard input: the password hashes never touch a disk."""
    subprocess.run(
        ["rabbitmqctl", "-q", "import_definitions"],
        input=json.dumps(document).encode(),
        check=True,
        capture_output=True,
        timeout=60,
    )


def create_users(
    vhost: str, users: Mapping[str, str], passwords: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Each process's user, with its permissions in `vhost`; returns
    process -> password (made here where none is given)."""
    chosen = {
        process: (passwords or {}).get(process) or secrets.token_urlsafe(24) for process in users
    }
    import_definitions(definitions(vhost, users, chosen))
    return chosen


PASSWORDS_FILE = "broker-passwords.json"


def development_users(run_dir: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`make run`'s users, on the vhost of KSMART_AMQP_URI (made with
    rabbitmqctl on this machine), their passwords kept under the run folder
    (owner only) and reused; each process's KSMART_<PROCESS>_AMQP_URI.
    Nothing when the environment names them already, or when there is no
    rabbitmqctl here (a broker in a container: one shared user, as before)."""
    environ = os.environ if environ is None else environ
    if environ.get("KSMART_GATEWAY_AMQP_URI") or shutil.which("rabbitmqctl") is None:
        return {}
    amqp_uri = config.amqp_uri(environ)
    users = {process: f"ksmart-{process}" for process in PROCESSES}
    passwords_file = run_dir / PASSWORDS_FILE
    known = json.loads(passwords_file.read_text()) if passwords_file.exists() else {}
    passwords = create_users(vhost_of(amqp_uri), users, known)
    passwords_file.touch(mode=0o600)
    passwords_file.write_text(json.dumps(passwords))
    return uri_environment(amqp_uri, users, passwords)


def vhost_of(amqp_uri: str) -> str:
    return unquote(urlsplit(amqp_uri).path[1:]) or "/"


def uri_environment(
    amqp_uri: str, users: Mapping[str, str], passwords: Mapping[str, str]
) -> dict[str, str]:
    """Each process's KSMART_<PROCESS>_AMQP_URI: the broker and vhost of
    `amqp_uri`, as the process's own user."""
    parts = urlsplit(amqp_uri)
    vhost = quote(vhost_of(amqp_uri), safe="")
    return {
        config.amqp_uri_variable(process): (
            f"amqp://{quote(users[process], safe='')}:{quote(passwords[process], safe='')}"
            f"@{parts.hostname}:{parts.port or 5672}/{vhost}"
        )
        for process in users
    }
