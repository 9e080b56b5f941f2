"""Configuration from environment variables, with defaults that work on a
developer's machine (PostgreSQL and RabbitMQ on loopback).

Secrets (database passwords, signing keys) are never defaulted to real values:
locally the database trusts loopback and the identity service generates its
own signing key on first start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_POSTGRES_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"

# One database per service: a service never reads another's tables.
SERVICE_DATABASES = {
    "applications": "ksmart_applications",
    "workflow": "ksmart_workflow",
    "identity": "ksmart_identity",
    "notifications": "ksmart_notifications",
}


# Each process's operations endpoints (health, readiness, metrics:
# ksmart_common.operations). In a container every process uses 0.0.0.0:9100
# (KSMART_OPS_ADDRESS); on one machine each needs a port of its own, which
# KSMART_OPS_ADDRESS_<PROCESS> can set (the tests take free ones).
OPS_PORTS = {
    "identity": 9101,
    "catalogue": 9102,
    "applications": 9103,
    "workflow": 9104,
    "notifications": 9105,
    "gateway": 9106,
    "relay": 9107,
    "checkpointer": 9108,
}


def env(name: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    """The setting from `environ` (the process's environment by default)."""
    value = (os.environ if environ is None else environ).get(name)
    return default if value in (None, "") else value


def ops_address(process: str, environ: Mapping[str, str] | None = None) -> str:
    shared = env("KSMART_OPS_ADDRESS", f"127.0.0.1:{OPS_PORTS[process]}", environ)
    return env(f"KSMART_OPS_ADDRESS_{process.upper()}", shared, environ)


def amqp_uri(environ: Mapping[str, str] | None = None, process: str | None = None) -> str:
    """The broker URI; a process's own (KSMART_<PROCESS>_AMQP_URI: its own
    RabbitMQ user, ksmart_ops.broker_users) where one is set."""
    shared = env("KSMART_AMQP_URI", DEFAULT_AMQP_URI, environ)
    if process is None:
        return shared
    return env(amqp_uri_variable(process), shared, environ)


def amqp_uri_variable(process: str) -> str:
    """Where a process finds its own broker URI: KSMART_<PROCESS>_AMQP_URI."""
    return f"KSMART_{process.upper()}_AMQP_URI"


def gateway_address(environ: Mapping[str, str] | None = None) -> str:
    """Where the gateway serves the public API (host:port)."""
    return env("KSMART_GATEWAY_ADDRESS", "127.0.0.1:8000", environ)


def database_url(service: str) -> str:
    """The URL the service itself connects with (its least-privileged role)."""
    default = f"postgresql+psycopg2://ksmart_{service}@127.0.0.1:5432/{SERVICE_DATABASES[service]}"
    return with_psycopg2(env(f"KSMART_{service.upper()}_DATABASE_URL", default))


def relay_database_url() -> str:
    """The relay reads events and keeps its checkpoint, with a role of its own."""
    default = "postgresql+psycopg2://ksmart_relay@127.0.0.1:5432/ksmart_applications"
    return with_psycopg2(env("KSMART_RELAY_DATABASE_URL", default))


def checkpointer_database_url() -> str:
    """The checkpointer reads events and keeps the transparency log's
    tables beside them, with a role of its own."""
    default = "postgresql+psycopg2://ksmart_checkpointer@127.0.0.1:5432/ksmart_applications"
    return with_psycopg2(env("KSMART_CHECKPOINTER_DATABASE_URL", default))


def admin_database_url() -> str:
    """A role that may create databases and roles and run migrations."""
    return with_psycopg2(env("KSMART_POSTGRES_ADMIN_URL", DEFAULT_POSTGRES_ADMIN_URL))


def _service_database_url(service: str) -> str | None:
    if service == "checkpointer":
        return checkpointer_database_url()
    return database_url(service) if service in SERVICE_DATABASES else None


def with_psycopg2(url: str) -> str:
    """SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; we use psycopg2."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare) :]
    return url


@dataclass(frozen=True)
class RetryPolicy:
    """How a consumer retries a failing message before dead-lettering it."""

    delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000)

    @classmethod
    def from_env(cls) -> RetryPolicy:
        raw = env("KSMART_RETRY_DELAYS_MS", ",".join(map(str, cls.delays_ms)))
        return cls(tuple(int(part) for part in raw.split(",") if part.strip()))


def nameko_config(service: str, **extra: object) -> dict:
    """The nameko config dict for one service process."""
    config: dict = {
        "AMQP_URI": amqp_uri(process=service),
        "rpc_exchange": "nameko-rpc",
        "max_workers": int(env("KSMART_MAX_WORKERS", "20")),
        "SERIALIZER": "json",
        "WEB_SERVER_ADDRESS": gateway_address(),
        "DB_URL": _service_database_url(service),
    }
    config.update(extra)
    return config
