"""`ksmart-admin broker-users`: a deployment's RabbitMQ users (one per
process, and KEDA's monitoring user), made from the URIs the processes are
given, with the permissions ksmart_ops.broker_users grants each.

Each process's URI (KSMART_<PROCESS>_AMQP_URI, from that process's own
Secret in k8s/, from .env in docker-compose.yml) names its user and
password, so a password is written down once, where its process reads it,
and cannot drift from the user made here. KEDA's user is named by
KSMART_MONITORING_USERNAME and KSMART_MONITORING_PASSWORD, the Secret KEDA
itself reads (k8s/components/autoscaling); unset, where no KEDA runs: no
monitoring user.

The definitions go through the management plugin's HTTP API
(`POST /api/definitions`) as the administrator KSMART_AMQP_URI names (the
one `ksmart-admin setup` declares the queues with): `rabbitmqctl`, which
`make run` and the tests use, would need the broker nodes' Erlang cookie in
the job's pod. An import adds and updates: users it does not name are left
alone, and running it again (every deploy) changes only what changed.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ksmart_common import config
from ksmart_ops.broker_users import MONITORING, PROCESSES, definitions, vhost_of

# Where the management API is; unset: the administrator URI's host, port 15672.
# Read by this command only, so it is not in the services' configuration.
MANAGEMENT_URL_ENV = "KSMART_RABBITMQ_MANAGEMENT_URL"
MANAGEMENT_PORT = 15672
MONITORING_USERNAME_ENV = "KSMART_MONITORING_USERNAME"
MONITORING_PASSWORD_ENV = "KSMART_MONITORING_PASSWORD"
TIMEOUT_SECONDS = 30


class BrokerUsersError(Exception):
    """The environment does not describe the users consistently."""


@dataclass(frozen=True)
class BrokerAccount:
    user: str
    password: str
    vhost: str


def account(uri: str) -> BrokerAccount:
    parts = urlsplit(uri)
    if not parts.username or not parts.password:
        raise BrokerUsersError("a broker URI without a user name and password")
    return BrokerAccount(unquote(parts.username), unquote(parts.password), vhost_of(uri))


@dataclass(frozen=True)
class DeploymentUsers:
    vhost: str
    users: dict[str, str]  # process -> user name
    passwords: dict[str, str]  # process -> password


def deployment_users(environ: Mapping[str, str]) -> DeploymentUsers:
    """Every process's account from its URI (each required), and the
    monitoring user's where KSMART_MONITORING_USERNAME is set. Refused:
    a missing URI, two processes sharing a user (the point is one each),
    a process named as the administrator (the import would strip the
    administrator's rights), or URIs on different vhosts."""
    administrator = account(config.amqp_uri(environ)).user
    missing = [
        config.amqp_uri_variable(process)
        for process in PROCESSES
        if not environ.get(config.amqp_uri_variable(process))
    ]
    if missing:
        raise BrokerUsersError(f"set {', '.join(missing)}: each process's own broker URI")
    accounts = {
        process: account(environ[config.amqp_uri_variable(process)]) for process in PROCESSES
    }
    if environ.get(MONITORING_USERNAME_ENV):
        if not environ.get(MONITORING_PASSWORD_ENV):
            raise BrokerUsersError(f"{MONITORING_USERNAME_ENV} without {MONITORING_PASSWORD_ENV}")
        accounts[MONITORING] = BrokerAccount(
            environ[MONITORING_USERNAME_ENV],
            environ[MONITORING_PASSWORD_ENV],
            accounts[PROCESSES[0]].vhost,
        )
    names = [found.user for found in accounts.values()]
    shared = sorted({name for name in names if names.count(name) > 1})
    if shared:
        raise BrokerUsersError(f"one user per process: {', '.join(shared)} named twice")
    if administrator in names:
        raise BrokerUsersError(f"{administrator!r} is the administrator (KSMART_AMQP_URI)")
    vhosts = sorted({found.vhost for found in accounts.values()})
    if len(vhosts) != 1:
        raise BrokerUsersError(f"the URIs name several vhosts: {', '.join(vhosts)}")
    return DeploymentUsers(
        vhost=vhosts[0],
        users={process: found.user for process, found in accounts.items()},
        passwords={process: found.password for process, found in accounts.items()},
    )


def management_url(environ: Mapping[str, str]) -> str:
    explicit = environ.get(MANAGEMENT_URL_ENV, "")
    if explicit:
        return explicit.rstrip("/")
    host = urlsplit(config.amqp_uri(environ)).hostname
    return f"http://{host}:{MANAGEMENT_PORT}"


def import_over_http(base_url: str, uri: str, document: Mapping[str, Any]) -> None:
    """POST the definitions to the management API as the user `uri` names."""
    administrator = account(uri)
    credentials = f"{administrator.user}:{administrator.password}".encode()
    request = urllib.request.Request(
        f"{base_url}/api/definitions",
        data=json.dumps(document).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(credentials).decode(),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):
            pass
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:500]
        raise BrokerUsersError(
            f"the management API refused the definitions: {error.code} {detail}"
        ) from None
    except urllib.error.URLError as error:
        raise BrokerUsersError(f"the management API at {base_url}: {error.reason}") from None


def create_deployment_users(environ: Mapping[str, str] | None = None) -> list[str]:
    """Make or update the users; returns their names."""
    environ = os.environ if environ is None else environ
    found = deployment_users(environ)
    document = definitions(found.vhost, found.users, found.passwords)
    import_over_http(management_url(environ), config.amqp_uri(environ), document)
    return list(found.users.values())
