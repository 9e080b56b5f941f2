"""What operators see of the running platform: every process answers its
health and readiness probes and serves Prometheus metrics, the counters move
as a file goes through its life, and one request id can be followed from the
gateway's log through every service's log."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from ksmart_common.config import OPS_PORTS
from tests.support import actions, citizen, metrics
from tests.support.platform import running_platform
from tests.support.waiting import wait_for

PROCESSES = tuple(OPS_PORTS)
WITH_DATABASE = ("identity", "applications", "workflow", "notifications", "relay", "checkpointer")


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("operations")) as running:
        yield running


def _samples(platform, process) -> dict[tuple[str, tuple], float]:
    reply = requests.get(f"{platform.ops_url(process)}/metrics", timeout=10)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    return metrics.parse(reply.text)


@pytest.mark.parametrize("process", PROCESSES)
def test_every_process_is_live_ready_and_measured(platform, process):
    live = requests.get(f"{platform.ops_url(process)}/health/live", timeout=10)
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    ready = requests.get(f"{platform.ops_url(process)}/health/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    expected = {"broker", "database"} if process in WITH_DATABASE else {"broker"}
    assert set(ready.json()["checked"]) == expected
    assert _samples(platform, process)  # parses as Prometheus text
    assert requests.get(f"{platform.ops_url(process)}/nothing", timeout=10).status_code == 404


def test_the_counters_move_as_a_file_goes_through_its_life(platform):
    before = {process: _samples(platform, process) for process in PROCESSES}
    file = citizen.submit(platform, citizen.application(platform)).json()
    actions.take(platform, "clerk.kochi", file["file_id"], "verify")
    actions.take(platform, "secretary.kochi", file["file_id"], "approve")

    def moved(process, name, at_least, **labels):
        def check():
            now = metrics.value(_samples(platform, process), name, **labels)
            return now - metrics.value(before[process], name, **labels) >= at_least

        wait_for(check, message=f"{process} {name} {labels} to grow by {at_least}")

    # Submitted, verified, approved, certificate: four events stored and published.
    moved("applications", "ksmart_events_appended_total", 4)
    moved("applications", "ksmart_events_appended_total", 1, event_type="CertificateIssued")
    moved("relay", "ksmart_events_published_total", 4)
    moved("workflow", "ksmart_messages_consumed_total", 4, queue="workflow.events", outcome="ok")
    moved("notifications", "ksmart_messages_consumed_total", 4, queue="notifications.events")
    moved("gateway", "ksmart_http_requests_total", 1, route="/api/v1/files", status="201")
    moved(
        "gateway",
        "ksmart_http_request_seconds_count",
        2,
        route="/api/v1/files/<uuid:file_id>/actions",
    )
    moved("applications", "ksmart_worker_seconds_count", 1, kind="rpc", method="submit_application")

    # The consumer has caught up with what the relay published: no lag.
    def caught_up():
        published = metrics.value(_samples(platform, "relay"), "ksmart_relay_published_position")
        consumed = metrics.value(
            _samples(platform, "workflow"), "ksmart_consumer_position", queue="workflow.events"
        )
        return published > 0 and consumed == published

    wait_for(caught_up, message="the workflow consumer to reach the relay's position")
    # A file left waiting on the clerk shows in Kochi's pending gauge.
    citizen.submit(platform, citizen.application(platform))
    wait_for(
        lambda: (
            metrics.value(
                _samples(platform, "workflow"), "ksmart_files_pending", local_body="KL-EKM-KOC"
            )
            >= 1
        ),
        message="Kochi's pending gauge",
    )


def test_one_request_id_is_followed_from_the_gateway_through_every_service(platform):
    file = citizen.submit(platform, citizen.application(platform)).json()
    client_request_id = f"trace-{uuid.uuid4()}"
    taken = actions.act(
        platform,
        "clerk.kochi",
        file["file_id"],
        "verify",
        headers={"X-Request-ID": client_request_id},
    )
    # The gateway's own id is followed, and answered; the client's is only
    # logged beside it, never recorded in the event.
    assert taken.status_code == 200, taken.text
    request_id = taken.headers["X-Request-ID"]
    assert request_id != client_request_id

    def lines(process):
        return [
            json.loads(line)
            for line in platform.log(process).splitlines()
            if request_id in line and line.startswith("{")
        ]

    # The gateway's access log, the applications service's RPC worker, and
    # the consumer of the event it stored.
    gateway = wait_for(lambda: lines("gateway"), message="the gateway's line")
    assert gateway[0]["request_id"] == request_id and gateway[0]["status"] == 200
    assert gateway[0]["client_request_id"] == client_request_id
    stored = wait_for(lambda: lines("applications"), message="the applications service's line")
    assert any(
        line["message"] == "rpc handled" and line["method"] == "take_action" for line in stored
    )
    assert all(line["correlation_id"] == request_id for line in stored)
    projected = wait_for(lambda: lines("workflow"), message="the workflow service's line")
    assert projected[0]["correlation_id"] == request_id
    for line in gateway + stored + projected:
        assert {"timestamp", "level", "service", "message"} <= set(line)
    events = requests.get(
        f"{platform.base_url}/api/v1/audit/files/{file['file_id']}/events",
        headers=platform.as_user("auditor"),
        timeout=10,
    ).json()["events"]
    assert events[-1]["metadata"]["request_id"] == request_id
    assert client_request_id not in json.dumps(events)
