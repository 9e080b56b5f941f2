"""Services know who calls (issue 18, item 7), on the real platform, in two
layers. A process that reaches a service's RPC queue directly cannot name
an actor the gateway did not sign for that very call: the service refuses
before acting, and nothing is written. And each process's broker user
reaches only what it must: the notifications service's user cannot even
publish a command to the applications or identity service."""

from __future__ import annotations

import json
import subprocess
import uuid
from urllib.parse import unquote, urlsplit

import pika
import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy

from ksmart_common import ed25519
from ksmart_common.actor_assertions import ActorSigner
from ksmart_common.errors import Unauthenticated
from ksmart_ops.broker_users import PROCESSES
from tests.support import citizen
from tests.support.citizen import KOCHI
from tests.support.platform import running_platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("platform")) as running:
        yield running


@pytest.fixture
def file_id(platform):
    submitted = citizen.submit(platform, citizen.application(platform))
    assert submitted.status_code == 201, submitted.text
    return submitted.json()["file_id"]


CLERK = {"actor_id": str(uuid.uuid4()), "roles": ["clerk"], "local_body": KOCHI, "wards": []}
ADMINISTRATOR = {"actor_id": str(uuid.uuid4()), "roles": ["administrator"], "local_body": None}


def _event_count(platform) -> int:
    with platform.engine("applications").connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM events")).scalar_one()


def _take_action(platform, file_id, actor):
    meta = {"request_id": str(uuid.uuid4()), "lang": "en", "command_id": str(uuid.uuid4())}
    with ClusterRpcProxy({"AMQP_URI": platform.amqp_uri}) as services:
        return services.applications.take_action(file_id, "verify", None, None, actor, meta, None)


def _forged(actor, method="take_action", **how):
    return ActorSigner("gateway", ed25519.generate_private_key(), **how).sign(
        actor, "applications", method
    )


@pytest.mark.parametrize(
    "how",
    ["unsigned", "signed by another key", "expired", "for another method", "for another service"],
)
def test_a_decision_with_an_actor_the_gateway_did_not_sign_for_it_is_refused(
    platform, file_id, how
):
    actor = {
        "unsigned": lambda: CLERK,
        "signed by another key": lambda: _forged(CLERK),
        "expired": lambda: ActorSigner(
            "gateway",
            ed25519.private_key_from_pem(platform.env["KSMART_GATEWAY_ACTOR_KEY"]),
            clock=lambda: 1_700_000_000.0,
        ).sign(CLERK, "applications", "take_action"),
        "for another method": lambda: platform.signed_actor(CLERK, "applications", "get_file"),
        "for another service": lambda: platform.signed_actor(CLERK, "workflow", "take_action"),
    }[how]()
    before = _event_count(platform)
    with pytest.raises(Unauthenticated):
        _take_action(platform, file_id, actor)
    assert _event_count(platform) == before
    # The same decision, signed by the gateway for this call, is taken.
    signed = platform.signed_actor(CLERK, "applications", "take_action")
    taken = _take_action(platform, file_id, signed)
    assert taken["state"] == "verified"
    assert _event_count(platform) == before + 1


def test_an_official_made_by_an_unsigned_administrator_is_refused(platform):
    username = f"forged.{uuid.uuid4().hex[:8]}"
    user = {
        "username": username,
        "display_name": "Not An Official",
        "kind": "official",
        "roles": ["clerk"],
        "local_body": KOCHI,
        "wards": [],
        "password": "a long enough password 1",
    }
    with ClusterRpcProxy({"AMQP_URI": platform.amqp_uri}) as services:
        with pytest.raises(Unauthenticated):
            services.identity.create_staff(user, ADMINISTRATOR)
        # Signed by the applications service, which may forward actors to
        # the identity service's consent check only.
        forwarded = platform.signed_actor(
            ADMINISTRATOR, "identity", "create_staff", signer="applications"
        )
        with pytest.raises(Unauthenticated):
            services.identity.create_staff(user, forwarded)
    with platform.engine("identity").connect() as connection:
        found = connection.execute(
            sa.text("SELECT count(*) FROM users WHERE username = :username"),
            {"username": username},
        ).scalar_one()
    assert found == 0


# -- the broker: each process's user reaches only what it must ------------


def _channel(uri: str):
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    channel = connection.channel()
    channel.confirm_delivery()
    return connection, channel


def _refused(platform, process: str, attempt) -> str:
    """What the broker said when `process`'s user tried `attempt(channel)`."""
    connection, channel = _channel(platform.env[f"KSMART_{process.upper()}_AMQP_URI"])
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refusal:
            attempt(channel)
        return f"{refusal.value.reply_code} {refusal.value.reply_text}"
    finally:
        connection.close()


def _request(method: str, actor) -> bytes:
    meta = {"request_id": str(uuid.uuid4()), "lang": "en", "command_id": str(uuid.uuid4())}
    arguments = {"take_action": [str(uuid.uuid4()), "verify", None, None, actor, meta, None]}
    return json.dumps({"args": arguments.get(method, []), "kwargs": {}}).encode()


@pytest.mark.parametrize(
    "routing_key",
    ["applications.take_action", "applications.submit_application", "identity.create_staff"],
)
def test_the_notifications_user_cannot_send_commands_at_the_broker(platform, routing_key):
    before = _event_count(platform)
    actor = platform.signed_actor(CLERK, *routing_key.split("."))
    said = _refused(
        platform,
        "notifications",
        lambda channel: channel.basic_publish(
            "nameko-rpc",
            routing_key,
            _request(routing_key.split(".")[1], actor),
            pika.BasicProperties(reply_to=str(uuid.uuid4()), correlation_id="forged"),
        ),
    )
    assert said.startswith("403 ACCESS_REFUSED") and routing_key in said
    assert _event_count(platform) == before


def test_the_notifications_user_may_call_what_it_needs(platform):
    connection, channel = _channel(platform.env["KSMART_NOTIFICATIONS_AMQP_URI"])
    try:
        # Confirmed by the broker: the applications service gets it (and
        # answers a reply queue nobody reads).
        channel.basic_publish(
            "nameko-rpc",
            "applications.read_stream",
            json.dumps({"args": ["file-none"], "kwargs": {}}).encode(),
            pika.BasicProperties(reply_to=str(uuid.uuid4()), correlation_id="allowed"),
            mandatory=True,
        )
    finally:
        connection.close()


def test_a_user_cannot_take_or_overhear_another_services_requests(platform):
    said = _refused(
        platform, "notifications", lambda channel: channel.basic_get("rpc-applications")
    )
    assert said.startswith("403") and "rpc-applications" in said

    def overhear(channel):
        queue = f"rpc.reply-notifications-{uuid.uuid4()}"
        channel.queue_declare(queue, exclusive=True)
        channel.queue_bind(queue, "nameko-rpc", "applications.*")

    said = _refused(platform, "notifications", overhear)
    assert said.startswith("403") and "applications.*" in said
    # Nor may the gateway consume a service's queue, nor the relay send RPC.
    assert _refused(platform, "gateway", lambda channel: channel.basic_get("rpc-identity"))
    assert _refused(
        platform,
        "relay",
        lambda channel: channel.basic_publish("nameko-rpc", "identity.create_staff", b"{}"),
    )


def test_the_monitoring_user_reads_queue_depths_only(platform):
    connection, channel = _channel(platform.env["KSMART_MONITORING_AMQP_URI"])
    try:
        assert channel.queue_declare("workflow.events", passive=True).method.message_count >= 0
    finally:
        connection.close()
    said = _refused(platform, "monitoring", lambda channel: channel.basic_get("workflow.events"))
    assert said.startswith("403")


def test_every_process_connects_as_its_own_user(platform):
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "vhost", "user"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    vhost = unquote(urlsplit(platform.amqp_uri).path[1:])
    users = {line.split("\t")[1] for line in listed.splitlines() if line.startswith(vhost + "\t")}
    assert {f"{vhost}-{process}" for process in PROCESSES} <= users
