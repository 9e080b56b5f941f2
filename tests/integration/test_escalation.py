"""Time limits over the real services: files whose state is long past its
time are escalated by the workflow service's timer exactly once, with two
workflow replicas running; inboxes order by due time and filter overdue
files, never showing another body's or another role's files."""

import subprocess
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import requests
import sqlalchemy as sa

from ksmart_catalogue.catalogue import Catalogue
from ksmart_common.appender import APPEND_LOCK, NOTIFY_CHANNEL, AppendRequest, seal
from ksmart_common.canonical import GENESIS_HASH
from ksmart_common.domain.file import Actor
from ksmart_common.envelope import file_stream_id
from ksmart_ops.devserver import start, wait_for_exit
from tests.support import actions, metrics
from tests.support.files import submission
from tests.support.platform import free_port, running_platform
from tests.support.waiting import wait_for

CITIZEN_ACTOR = {"actor_roles": ["citizen"], "correlation_id": "backdated"}


@dataclass(frozen=True)
class Replica:
    process: subprocess.Popen
    ops_url: str


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    environ = {"KSMART_ESCALATION_INTERVAL_SECONDS": "0.5"}
    with running_platform(tmp_path_factory.mktemp("escalation"), environ=environ) as running:
        yield running


@pytest.fixture(scope="module")
def replica(platform):
    """A second replica of the workflow service, as an operator scales it,
    with an operations port of its own (so it starts, and is measured)."""
    ops_address = f"127.0.0.1:{free_port()}"
    environ = {**platform.env, "KSMART_OPS_ADDRESS_WORKFLOW": ops_address}
    processes = start(platform.run_dir / "replica", environ, names=["workflow"])
    try:
        ready = f"http://{ops_address}/health/ready"
        wait_for(lambda: _answers(ready), timeout=60, message="the second replica ready")
        yield Replica(processes["workflow"], f"http://{ops_address}")
    finally:
        for process in processes.values():
            process.terminate()
        wait_for_exit(processes)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _file_filed_days_ago(platform, days, local_body="KL-EKM-KOC"):
    """A file whose ApplicationSubmitted was recorded `days` ago: stored as
    the event store stores it (under the ordering lock, the next position),
    then announced to the relay."""
    definition = Catalogue.load().get_service("birth-certificate")
    citizen = platform.token("citizen")  # the demo citizen's id is in its token
    applicant = jwt.decode(citizen, options={"verify_signature": False})["sub"]
    file_id = str(uuid.uuid4())
    (event,) = submission(file_id, definition, local_body, Actor(applicant, ("citizen",)))
    engine = platform.engine("applications")
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": APPEND_LOCK})
        last = conn.execute(
            sa.text("SELECT coalesce(max(global_position), 0) FROM events")
        ).scalar()
        metadata = {"actor_id": applicant, **CITIZEN_ACTOR}
        number = f"{local_body}/BR/2026/{last + 1:06d}"
        request = AppendRequest(
            file_stream_id(file_id),
            [replace(event, data={**event.data, "file_number": number})],
            expected_version=0,
            metadata=metadata,
        )
        recorded_at = datetime.now(UTC) - timedelta(days=days)
        ((envelope, data_text, metadata_text),) = seal(request, 0, GENESIS_HASH, last, recorded_at)
        conn.execute(
            sa.text(
                "INSERT INTO events (global_position, event_id, stream_id, stream_version,"
                " event_type, schema_version, data, metadata, recorded_at, prev_hash, hash)"
                " VALUES (:position, :event_id, :stream, 1, :type, 1, CAST(:data AS json),"
                " CAST(:metadata AS json), :at, :prev, :hash)"
            ),
            {
                "position": envelope.global_position,
                "event_id": str(envelope.event_id),
                "stream": envelope.stream_id,
                "type": envelope.event_type,
                "data": data_text,
                "metadata": metadata_text,
                "at": envelope.recorded_at,
                "prev": envelope.prev_hash,
                "hash": envelope.hash,
            },
        )
        conn.execute(
            sa.text("SELECT pg_notify(:channel, :position)"),
            {"channel": NOTIFY_CHANNEL, "position": str(envelope.global_position)},
        )
    return file_id


def _events(platform, file_id):
    with platform.engine("applications").connect() as conn:
        return (
            conn.execute(
                sa.text(
                    "SELECT event_type FROM events WHERE stream_id = :s ORDER BY stream_version"
                ),
                {"s": file_stream_id(file_id)},
            )
            .scalars()
            .all()
        )


def _inbox(platform, user, **params):
    reply = requests.get(
        f"{platform.base_url}/api/v1/inbox",
        params=params,
        headers=platform.as_user(user),
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["files"]


def test_an_overdue_file_is_escalated_once_with_two_replicas_running(platform, replica):
    files = [_file_filed_days_ago(platform, days=30) for _ in range(5)]
    wait_for(
        lambda: all("FileEscalated" in _events(platform, file_id) for file_id in files),
        timeout=60,
        message="every overdue file escalated",
    )
    # Once the projection shows them escalated, no replica's timer picks
    # them again; any second escalation would have been stored by now.
    wait_for(
        lambda: set(files) <= {e["file_id"] for e in _inbox(platform, "secretary.kochi")},
        timeout=30,
        message="escalated files in the secretary's inbox",
    )
    in_secretary = {entry["file_id"]: entry for entry in _inbox(platform, "secretary.kochi")}
    assert all(in_secretary[file_id]["escalated"] for file_id in files)
    for file_id in files:
        assert _events(platform, file_id).count("FileEscalated") == 1
    clerk_inbox = {entry["file_id"] for entry in _inbox(platform, "clerk.kochi")}
    assert not set(files) & clerk_inbox
    # Two replicas really ran: each is alive, swept for overdue files on its
    # timer, and projected part of the events.
    assert replica.process.poll() is None, "the second replica exited"
    for ops_url in (platform.ops_url("workflow"), replica.ops_url):
        samples = metrics.parse(requests.get(f"{ops_url}/metrics", timeout=10).text)
        sweeps = metrics.value(
            samples, "ksmart_worker_seconds_count", kind="timer", method="escalate_overdue"
        )
        consumed = metrics.value(samples, "ksmart_messages_consumed_total", outcome="ok")
        assert sweeps > 0 and consumed > 0, (ops_url, sweeps, consumed)


def test_inboxes_are_ordered_by_due_time_filtered_and_never_cross_bodies_or_roles(platform):
    # Fresh files (due in days), plus one for another body.
    fresh = [_file_filed_days_ago(platform, days=0) for _ in range(3)]
    elsewhere = _file_filed_days_ago(platform, days=0, local_body="KL-TVM-TVC")
    wait_for(
        lambda: set(fresh) <= {e["file_id"] for e in _inbox(platform, "clerk.kochi")},
        timeout=30,
        message="fresh files in the clerk's inbox",
    )
    inbox = _inbox(platform, "clerk.kochi")
    dues = [entry["state_due_at"] for entry in inbox if entry["state_due_at"]]
    assert dues == sorted(dues)
    assert all(
        entry["local_body"] == "KL-EKM-KOC" and entry["waits_on"] == "clerk" for entry in inbox
    )
    assert elsewhere not in {entry["file_id"] for entry in inbox}
    assert elsewhere in {entry["file_id"] for entry in _inbox(platform, "clerk.tvm")}
    assert not set(fresh) & {e["file_id"] for e in _inbox(platform, "secretary.kochi")}
    not_late = _inbox(platform, "clerk.kochi", overdue="false", service="birth-certificate")
    assert set(fresh) <= {entry["file_id"] for entry in not_late}
    assert not {e["file_id"] for e in _inbox(platform, "clerk.kochi", overdue="true")} & set(fresh)
    counts = requests.get(
        f"{platform.base_url}/api/v1/inbox/counts",
        headers=platform.as_user("clerk.kochi"),
        timeout=10,
    ).json()
    clerk_row = next(row for row in counts["roles"] if row["waits_on"] == "clerk")
    assert clerk_row["pending"] >= 3 and counts["local_body"] == "KL-EKM-KOC"


def test_statistics_count_files_received_decided_pending_and_overdue(platform):
    from tests.support import citizen

    overdue = _file_filed_days_ago(platform, days=40, local_body="KL-EKM-KOC")
    file = citizen.submit(platform, citizen.application(platform)).json()
    actions.take(platform, "clerk.kochi", file["file_id"], "verify")
    actions.take(platform, "secretary.kochi", file["file_id"], "approve")

    def kochi_births():
        rows = requests.get(
            f"{platform.base_url}/api/v1/statistics",
            params={"local_body": "KL-EKM-KOC", "service": "birth-certificate"},
            timeout=10,
        ).json()["rows"]
        return rows[0] if rows and rows[0]["decided"] >= 1 else None

    row = wait_for(kochi_births, timeout=30, message="a decided file counted")
    assert row["received"] == row["decided"] + row["pending"]
    assert row["overdue"] >= 1 and row["median_decision_days"] is not None
    # The file filed 40 days ago is past its time limit: the timer escalates it.
    wait_for(
        lambda: "FileEscalated" in _events(platform, overdue),
        timeout=30,
        message="the file filed 40 days ago escalated",
    )
