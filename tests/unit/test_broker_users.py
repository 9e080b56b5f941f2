"""Each process's RabbitMQ user (ksmart_ops.broker_users): the methods it may
call are the ones its code calls, and its permissions name nothing else."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from ksmart_ops.broker_users import CALLS, MONITORING, RPC_SERVICES, definitions, grant

ROOT = Path(__file__).resolve().parents[2]
CALLED = re.compile(r"call\(\s*self\.(" + "|".join(RPC_SERVICES) + r")\.(\w+)")


def _calls_in_code(process: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for source in (ROOT / "services" / process).rglob("*.py"):
        for service, method in CALLED.findall(source.read_text()):
            found.setdefault(service, set()).add(method)
    return found


@pytest.mark.parametrize("process", [name for name in RPC_SERVICES])
def test_a_service_may_call_exactly_what_its_code_calls(process):
    allowed = {service: set(methods) for service, methods in CALLS[process].items() if methods}
    assert allowed == _calls_in_code(process)


def _matches(pattern: str | None, text: str) -> bool:
    return pattern is not None and re.fullmatch(pattern, text) is not None


def test_the_notifications_user_publishes_only_its_calls_and_replies():
    rights = grant("notifications")
    assert _matches(rights.rpc_write, "applications.read_stream")
    assert _matches(rights.rpc_write, str(uuid.uuid4()))  # a reply
    for forbidden in ("applications.take_action", "identity.create_staff", "applications.x"):
        assert not _matches(rights.rpc_write, forbidden)
    # It binds its own requests and replies, never another's requests.
    assert _matches(rights.rpc_read, "notifications.*")
    assert not _matches(rights.rpc_read, "applications.*")


def test_a_user_owns_its_queues_and_no_other_services():
    rights = grant("notifications")
    for own in ("rpc-notifications", "notifications.events.retry.1000ms", "notifications.otp"):
        assert _matches(rights.read, own) and _matches(rights.configure, own)
    for other in ("rpc-applications", "workflow.events", "rpc.reply-gateway-1"):
        assert not _matches(rights.read, other) and not _matches(rights.configure, other)


def test_the_relay_only_publishes_events_and_monitoring_touches_nothing():
    relay = grant("relay")
    assert _matches(relay.write, "applications.events")
    assert not _matches(relay.write, "nameko-rpc") and relay.read == "^$"
    monitoring = grant(MONITORING)
    assert (monitoring.configure, monitoring.write, monitoring.read) == ("^$", "^$", "^$")


def test_definitions_name_each_user_once_with_its_rights():
    users = {"gateway": "g", MONITORING: "m"}
    document = definitions("v", users, {"gateway": "pw1", MONITORING: "pw2"})
    assert [user["name"] for user in document["users"]] == ["g", "m"]
    assert document["users"][1]["tags"] == ["monitoring"]
    assert all("pw" not in user["password_hash"] for user in document["users"])
    assert [grant["user"] for grant in document["topic_permissions"]] == ["g"]
