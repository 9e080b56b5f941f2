"""The whole platform as real processes on a fresh database set and vhost:
what the end-to-end tests talk to over HTTP, as a citizen's app would."""

from __future__ import annotations

import contextlib
import secrets
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
import sqlalchemy as sa

from ksmart_common import ed25519
from ksmart_common.actor_assertions import GATEWAY, ActorSigner, signing_key_env
from ksmart_common.config import OPS_PORTS
from ksmart_common.messaging import declare_otp_queue
from ksmart_common.migrations import RoleNames
from ksmart_identity.directory import load_directory, shipped_directory
from ksmart_identity.users import seed_demo_users
from ksmart_ops.actor_keys import actor_key_environment
from ksmart_ops.admin import consumer_topologies
from ksmart_ops.devserver import SERVICES, start, stop, wait_for_exit, wait_until_ready
from ksmart_ops.event_key import event_key_environment
from ksmart_ops.key_root import anchor_development_keys, key_root_environment
from ksmart_ops.log_key import log_key_environment
from tests.support.broker import fresh_vhost, process_users
from tests.support.databases import ServiceDatabase, fresh_service_database

TEST_RETRY_DELAYS_MS = (200, 400)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Platform:
    base_url: str
    amqp_uri: str
    password: str
    databases: dict[str, ServiceDatabase]
    env: dict[str, str]
    run_dir: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, username: str) -> str:
        if username not in self.tokens:
            reply = requests.post(
                f"{self.base_url}/api/v1/auth/token",
                json={"username": username, "password": self.password},
                timeout=10,
            )
            assert reply.status_code == 200, reply.text
            self.tokens[username] = reply.json()["access_token"]
        return self.tokens[username]

    def as_user(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def engine(self, service: str) -> sa.Engine:
        return sa.create_engine(self.databases[service].superuser_url, poolclass=sa.pool.NullPool)

    def ops_url(self, process: str) -> str:
        """Where the process serves /health/live, /health/ready and /metrics."""
        return "http://" + self.env[f"KSMART_OPS_ADDRESS_{process.upper()}"]

    def signed_actor(self, actor: dict, service: str, method: str, signer: str = GATEWAY) -> str:
        """The actor as `signer` signs it for one RPC method, for a test
        that calls a service directly over the broker."""
        key = ed25519.private_key_from_pem(self.env[signing_key_env(signer)])
        return ActorSigner(signer, key).sign(actor, service, method)

    def log(self, name: str) -> str:
        return (self.run_dir / f"{name}.log").read_text(errors="replace")


@contextlib.contextmanager
def running_platform(
    tmp_dir: Path,
    names=(*SERVICES, "relay"),
    environ: dict[str, str] | None = None,
    retry_delays_ms: tuple[int, ...] = TEST_RETRY_DELAYS_MS,
) -> Iterator[Platform]:
    """The platform on fresh databases and a fresh vhost. Consumers retry a
    failing message after `retry_delays_ms` (the tests' short delays unless
    told otherwise: the soak runs with production's)."""
    roles = RoleNames(prefix=f"kt{uuid.uuid4().hex[:10]}_")
    with contextlib.ExitStack() as stack:
        databases = {
            service: stack.enter_context(fresh_service_database(service, roles))
            for service in ("applications", "workflow", "identity", "notifications")
        }
        amqp_uri = stack.enter_context(fresh_vhost())
        # Each process with a broker user of its own, as deployed.
        broker_uris = stack.enter_context(process_users(amqp_uri))
        for topology in consumer_topologies(retry_delays_ms):
            topology.declare(amqp_uri)
        declare_otp_queue(amqp_uri, 900)
        password = secrets.token_urlsafe(12)
        identity = sa.create_engine(databases["identity"].service_url, poolclass=sa.pool.NullPool)
        seed_demo_users(identity, password)
        load_directory(identity, shipped_directory())
        identity.dispose()
        # A caller may choose the address (to tell a provider where to call back).
        address = (environ or {}).get("KSMART_GATEWAY_ADDRESS") or f"127.0.0.1:{free_port()}"
        env = {
            "KSMART_AMQP_URI": amqp_uri,
            "KSMART_APPLICATIONS_DATABASE_URL": databases["applications"].service_url,
            "KSMART_RELAY_DATABASE_URL": databases["applications"].url_as("relay"),
            "KSMART_CHECKPOINTER_DATABASE_URL": databases["applications"].url_as("checkpointer"),
            "KSMART_WORKFLOW_DATABASE_URL": databases["workflow"].service_url,
            "KSMART_IDENTITY_DATABASE_URL": databases["identity"].service_url,
            "KSMART_NOTIFICATIONS_DATABASE_URL": databases["notifications"].service_url,
            "KSMART_GATEWAY_ADDRESS": address,
            "KSMART_RETRY_DELAYS_MS": ",".join(map(str, retry_delays_ms)),
            "KSMART_LOG_LEVEL": "INFO",
            "KSMART_DOCUMENTS_DIR": str(tmp_dir / "documents"),
            "KSMART_PAYMENT_PROVIDER": "fake",
            "KSMART_PAYMENT_SECRET": secrets.token_hex(32),
            # Each process's health and metrics endpoints on a free port.
            **{
                f"KSMART_OPS_ADDRESS_{process.upper()}": f"127.0.0.1:{free_port()}"
                for process in OPS_PORTS
            },
            # The transparency log's key and origin, and checkpoints twice a second.
            **log_key_environment(tmp_dir, {}),
            # The key that signs each event, endorsed below with the others.
            **event_key_environment(tmp_dir, {}),
            "KSMART_CHECKPOINT_SECONDS": "0.5",
            # A key root made for this platform alone (development_root(tmp_dir)).
            **key_root_environment(tmp_dir, {}),
            **broker_uris,
            # The actor signers' keys, made for this platform alone.
            **actor_key_environment(tmp_dir, {}),
            **(environ or {}),
        }
        # Its token, certificate and event keys made and endorsed, as `make run` does.
        key_databases = {name: databases[name].service_url for name in ("identity", "applications")}
        anchor_development_keys(tmp_dir, key_databases, env)
        processes = start(tmp_dir, env, names=list(names))
        stack.callback(_stop_and_wait, tmp_dir, processes)
        wait_until_ready(
            amqp_uri,
            address,
            timeout=90,
            processes=processes,
            names=tuple(name for name in names if name != "relay"),
        )
        yield Platform(f"http://{address}", amqp_uri, password, databases, env, tmp_dir)


def _stop_and_wait(run_dir: Path, processes) -> None:
    """Stop every process and wait for it, so its connections close before
    the databases and the vhost are dropped."""
    stop(run_dir)
    wait_for_exit(processes)
