"""A file from submission to decision through the gateway, over the real
services, PostgreSQL and RabbitMQ: what a citizen, officials and an auditor
see, and the refusals they get."""

import uuid

import pytest
import requests
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy

from ksmart_common.errors import ActionNotAllowed
from tests.support import actions, citizen
from tests.support.citizen import KOCHI
from tests.support.platform import running_platform
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("platform")) as running:
        yield running


def _submit(platform, key=None, form=None, service_code="birth-certificate", body=None):
    body = body or citizen.application(platform, service_code)
    if form is not None:
        body = {**body, "form": form}
    return citizen.submit(platform, body, key=key)


def _inbox(platform, user):
    reply = requests.get(
        f"{platform.base_url}/api/v1/inbox", headers=platform.as_user(user), timeout=10
    )
    assert reply.status_code == 200, reply.text
    return {entry["file_id"]: entry for entry in reply.json()["files"]}


def test_a_file_goes_from_submission_to_approval_with_a_verified_trail(platform):
    submitted = _submit(platform)
    assert submitted.status_code == 201, submitted.text
    file = submitted.json()
    file_id = file["file_id"]
    assert file["state"] == "submitted" and file["waits_on"] == "clerk"
    assert submitted.headers["Location"].endswith(file_id)
    assert submitted.headers["X-Request-ID"]

    # The workflow projection puts it in the Kochi clerk's inbox, not Thiruvananthapuram's.
    wait_for(lambda: file_id in _inbox(platform, "clerk.kochi"), message="file in clerk inbox")
    assert file_id not in _inbox(platform, "clerk.tvm")

    returned = actions.act(
        platform,
        "clerk.kochi",
        file_id,
        "return_for_clarification",
        version=1,
        remarks="Attach the hospital discharge summary",
    )
    assert returned.status_code == 200, returned.text
    assert returned.json()["waits_on"] == "applicant"
    wait_for(lambda: file_id in _inbox(platform, "citizen"), message="file back with citizen")

    resubmitted = actions.act(
        platform, "citizen", file_id, "resubmit", version=2, remarks="Attached"
    )
    assert resubmitted.status_code == 200, resubmitted.text
    verified = actions.act(platform, "clerk.kochi", file_id, "verify", version=3)
    assert verified.json()["state"] == "verified"
    approved = actions.act(platform, "secretary.kochi", file_id, "approve", version=4)
    assert approved.status_code == 200, approved.text
    # The approval and the certificate it yields: versions 5 and 6.
    assert approved.headers["ETag"] == '"6"'

    read = requests.get(
        f"{platform.base_url}/api/v1/files/{file_id}",
        headers=platform.as_user("citizen"),
        timeout=10,
    ).json()
    assert read["state"] == "approved" and read["allowed_actions"] == []
    assert [(step["action"], step["role"]) for step in read["timeline"]] == [
        ("submit", "applicant"),
        ("return_for_clarification", "clerk"),
        ("resubmit", "applicant"),
        ("verify", "clerk"),
        ("approve", "secretary"),
        ("issue_certificate", "system"),
    ]
    assert read["timeline"][1]["remarks"] == "Attach the hospital discharge summary"

    audit = requests.get(
        f"{platform.base_url}/api/v1/audit/files/{file_id}/events",
        headers=platform.as_user("auditor"),
        timeout=10,
    ).json()
    assert audit["verified"] is True and audit["problems"] == []
    assert [event["event_type"] for event in audit["events"]] == [
        "ApplicationSubmitted",
        "FileReturnedForClarification",
        "ClarificationProvided",
        "FileVerified",
        "FileApproved",
        "CertificateIssued",
    ]
    first = audit["events"][0]
    assert first["data"]["service"]["content_hash"] == read["definition_hash"]
    assert first["data"]["service"]["workflow"]["initial_state"] == "submitted"
    assert first["metadata"]["request_id"] == submitted.headers["X-Request-ID"]

    # The projection catches up with the store: same state, same version.
    def projected():
        with platform.engine("workflow").connect() as conn:
            return conn.execute(
                sa.text("SELECT state, version FROM files WHERE file_id = :f"), {"f": file_id}
            ).one_or_none()

    wait_for(lambda: projected() == ("approved", 6), message="projection at version 6")


def test_refusals_are_problem_documents_with_the_right_status(platform):
    file_id = _submit(platform).json()["file_id"]
    problem_type = "application/problem+json"

    stale = actions.act(platform, "clerk.kochi", file_id, "verify", version=7)
    assert stale.status_code == 409 and stale.headers["Content-Type"] == problem_type
    wrong_state = actions.act(platform, "clerk.kochi", file_id, "approve", version=1)
    assert wrong_state.status_code == 409
    assert "allowed now: verify" in wrong_state.text
    wrong_role = actions.act(platform, "secretary.kochi", file_id, "verify", version=1)
    assert wrong_role.status_code == 403
    other_body = actions.act(platform, "clerk.tvm", file_id, "verify", version=1)
    assert other_body.status_code in (403, 404)
    no_remarks = actions.act(
        platform, "clerk.kochi", file_id, "return_for_clarification", version=1
    )
    assert no_remarks.status_code == 422

    anonymous = requests.get(f"{platform.base_url}/api/v1/files/{file_id}", timeout=10)
    assert anonymous.status_code == 401 and anonymous.headers["Content-Type"] == problem_type
    not_auditor = requests.get(
        f"{platform.base_url}/api/v1/audit/events",
        headers=platform.as_user("clerk.kochi"),
        timeout=10,
    )
    assert not_auditor.status_code == 403

    # Every problem of a bad body in one answer.
    bad = requests.post(
        f"{platform.base_url}/api/v1/files",
        json={"local_body": "Kochi", "form": "x", "extra": 1},
        headers=platform.as_user("citizen"),
        timeout=10,
    )
    assert bad.status_code == 422
    fields = {problem["field"] for problem in bad.json()["problems"]}
    assert {"service_code", "local_body", "form", "extra"} <= fields

    missing = _submit(platform, form={})
    assert missing.status_code == 422
    assert len(missing.json()["problems"]) >= 2  # every required field named at once


def test_an_idempotency_key_makes_a_retry_return_the_same_file(platform):
    key = str(uuid.uuid4())
    body = citizen.application(platform)
    first = _submit(platform, key=key, body=body)
    again = _submit(platform, key=key, body=body)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["file_id"] == again.json()["file_id"]
    assert first.json()["file_number"] == again.json()["file_number"]
    different = _submit(
        platform, key=key, body=body, form={**body["form"], "child_name": "Someone Else"}
    )
    assert different.status_code == 422


def test_a_submission_delivered_twice_makes_one_file(platform):
    # RabbitMQ delivers a request again when the reply to it could not be
    # sent (the broker went away): the same message, with the command id the
    # gateway gave it, reaches the applications service twice.
    body = citizen.application(platform)
    applicant = _submit(platform, body=body).json()["applicant_id"]
    actor = {"actor_id": applicant, "roles": ["citizen"], "local_body": None, "wards": []}

    def deliver(command_id):
        meta = {"request_id": str(uuid.uuid4()), "lang": "en", "command_id": command_id}
        with ClusterRpcProxy({"AMQP_URI": platform.amqp_uri}) as services:
            return services.applications.submit_application(
                body["service_code"],
                body["local_body"],
                body["form"],
                platform.signed_actor(actor, "applications", "submit_application"),
                meta,
                body["documents"],
            )

    command = str(uuid.uuid4())
    first, again = deliver(command), deliver(command)
    assert first["created"] and not again["created"]
    assert again["file"]["file_id"] == first["file"]["file_id"]
    assert again["file"]["file_number"] == first["file"]["file_number"]
    # Another command is another file.
    assert deliver(str(uuid.uuid4()))["file"]["file_id"] != first["file"]["file_id"]


def test_a_decision_delivered_twice_is_taken_once(platform):
    file_id = _submit(platform).json()["file_id"]
    clerk = {"actor_id": str(uuid.uuid4()), "roles": ["clerk"], "local_body": KOCHI, "wards": []}

    def deliver(action, command_id):
        meta = {"request_id": str(uuid.uuid4()), "lang": "en", "command_id": command_id}
        with ClusterRpcProxy({"AMQP_URI": platform.amqp_uri}) as services:
            signed = platform.signed_actor(clerk, "applications", "take_action")
            return services.applications.take_action(
                file_id, action, None, None, signed, meta, None
            )

    command = str(uuid.uuid4())
    first, again = deliver("verify", command), deliver("verify", command)
    # The second delivery answers the file as the first left it.
    assert first["version"] == 2 and again["version"] == 2
    assert again["state"] == first["state"]
    # The same decision asked for anew is a new command: refused, as verified.
    with pytest.raises(ActionNotAllowed):
        deliver("verify", str(uuid.uuid4()))


def test_audit_reads_the_whole_log_in_pages(platform):
    for _ in range(5):  # at least three pages of two, whatever ran before
        _submit(platform)
    headers = platform.as_user("auditor")
    with platform.engine("applications").connect() as conn:
        last = conn.execute(sa.text("SELECT max(global_position) FROM events")).scalar_one()
    assert last >= 5  # enough for three pages of two
    positions, after, pages = [], 0, 0
    while True:
        page = requests.get(
            f"{platform.base_url}/api/v1/audit/events",
            params={"after": after, "limit": 2},
            headers=headers,
            timeout=10,
        ).json()
        if not page["events"]:
            assert page["next_position"] == after  # the end: nothing more, nowhere to go
            break
        assert len(page["events"]) <= 2
        positions += [event["global_position"] for event in page["events"]]
        after, pages = page["next_position"], pages + 1
    # Every event, once, in order, up to the log's last position: no page
    # skipped, repeated or stopped short.
    assert positions == list(range(1, last + 1))
    assert after == last and pages == -(-last // 2)


def test_the_openapi_document_states_who_may_call_each_endpoint(platform):
    document = requests.get(f"{platform.base_url}/api/v1/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.")
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["description"].startswith("Who may call:"), (path, method)
    submit = document["paths"]["/api/v1/files"]["post"]
    assert submit["x-allowed-roles"] == ["citizen"]
    assert "SubmitApplicationRequest" in str(submit["requestBody"])


def test_an_event_altered_behind_the_platforms_back_is_detected(platform):
    file_id = _submit(platform).json()["file_id"]
    assert actions.act(platform, "clerk.kochi", file_id, "verify", version=1).status_code == 200
    assert (
        actions.act(platform, "secretary.kochi", file_id, "approve", version=2).status_code == 200
    )

    # A superuser switches the immutability trigger off and rewrites history.
    with platform.engine("applications").begin() as conn:
        conn.execute(sa.text("ALTER TABLE events DISABLE TRIGGER events_refuse_update_delete"))
        conn.execute(
            sa.text(
                "UPDATE events SET data = json_build_object("
                "'action', 'reject', 'from_state', 'verified', 'to_state', 'rejected',"
                "'remarks', 'forged', 'actor_role', 'secretary')"
                " WHERE stream_id = :s AND stream_version = 3"
            ),
            {"s": f"file-{file_id}"},
        )
        conn.execute(sa.text("ALTER TABLE events ENABLE TRIGGER events_refuse_update_delete"))

    audit = requests.get(
        f"{platform.base_url}/api/v1/audit/files/{file_id}/events",
        headers=platform.as_user("auditor"),
        timeout=10,
    ).json()
    assert audit["verified"] is False
    altered, spelled_otherwise = audit["problems"]
    assert altered == f"file-{file_id} v3: hash does not match the event's content (altered)"
    # json_build_object writes `"action" : "reject"`: not the canonical text either.
    assert spelled_otherwise.startswith(f"file-{file_id} v3: the stored text is not canonical")
    assert '"action" : "reject"' in spelled_otherwise
