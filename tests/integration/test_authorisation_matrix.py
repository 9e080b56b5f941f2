"""Who may call what: every role against every endpoint, as pinned in the
table below (written here, not read from the declarations that enforce it,
so a role declared wrongly fails), and every kind of caller against a file
inside and outside their reach. The gateway refuses a role an endpoint is
not for (403, or 401 with no token); the services that hold the data refuse
what the caller's jurisdiction does not cover (404: a file out of reach is
not even confirmed to exist)."""

import re
import uuid

import pytest
import requests

from tests.support import actions, citizen
from tests.support.platform import running_platform
from tests.support.waiting import wait_for

OFFICIALS = frozenset(
    {
        "clerk",
        "overseer",
        "assistant_engineer",
        "health_inspector",
        "revenue_inspector",
        "section_officer",
        "secretary",
    }
)
PUBLIC = frozenset({"public"})
CITIZEN = frozenset({"citizen"})
AUDITOR = frozenset({"auditor"})
ADMINISTRATOR = frozenset({"administrator"})
AKSHAYA = frozenset({"akshaya_operator"})
# Counter staff, who file for citizens with their consent: a body's clerks
# (to their own body) and Akshaya operators (to any).
COUNTER = frozenset({"clerk"}) | AKSHAYA
READERS_OF_FILES = OFFICIALS | CITIZEN | AUDITOR | AKSHAYA
ANY_USER = READERS_OF_FILES | ADMINISTRATOR

# Every endpoint and the roles it is for. A new endpoint is added here by
# hand, with who may call it; the document must say the same.
MATRIX = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("POST", "/api/v1/auth/otp"): PUBLIC,
    ("POST", "/api/v1/auth/otp/verify"): PUBLIC,
    ("POST", "/api/v1/auth/refresh"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): ANY_USER,
    ("GET", "/api/v1/me"): ANY_USER,
    ("GET", "/api/v1/categories"): PUBLIC,
    ("GET", "/api/v1/services"): PUBLIC,
    ("GET", "/api/v1/services/{code}"): PUBLIC,
    ("GET", "/api/v1/definitions/{content_hash}"): PUBLIC,
    ("GET", "/api/v1/districts"): PUBLIC,
    ("GET", "/api/v1/local-bodies"): PUBLIC,
    ("GET", "/api/v1/local-bodies/{code}"): PUBLIC,
    ("GET", "/api/v1/statistics"): PUBLIC,
    ("GET", "/api/v1/certificate-keys"): PUBLIC,
    ("GET", "/api/v1/event-keys"): PUBLIC,
    ("GET", "/api/v1/certificates/{number}"): PUBLIC,
    ("POST", "/api/v1/certificates/verify"): PUBLIC,
    # The transparency log: public (a leaf is an event's hash, nothing personal).
    ("GET", "/api/v1/log/checkpoint"): PUBLIC,
    ("GET", "/api/v1/log/key"): PUBLIC,
    ("GET", "/api/v1/log/proofs/inclusion"): PUBLIC,
    ("GET", "/api/v1/log/proofs/consistency"): PUBLIC,
    ("GET", "/api/v1/log/leaves"): PUBLIC,
    ("GET", "/api/v1/log/events/{global_position}/inclusion"): PUBLIC,
    ("POST", "/api/v1/payments/callback"): PUBLIC,
    ("POST", "/api/v1/notifications/sms-receipts"): PUBLIC,
    ("GET", "/api/v1/track/{number}"): PUBLIC,
    ("POST", "/api/v1/documents"): CITIZEN | COUNTER,
    ("POST", "/api/v1/counter/consents"): COUNTER,
    ("POST", "/api/v1/counter/files"): COUNTER,
    ("GET", "/api/v1/files"): CITIZEN,
    ("POST", "/api/v1/files"): CITIZEN,
    ("POST", "/api/v1/services/{code}/validation"): CITIZEN | COUNTER,
    ("GET", "/api/v1/files/{file_id}"): READERS_OF_FILES,
    ("POST", "/api/v1/files/{file_id}/actions"): OFFICIALS | CITIZEN,
    ("POST", "/api/v1/files/{file_id}/assignment"): OFFICIALS,
    ("GET", "/api/v1/files/{file_id}/certificate"): READERS_OF_FILES,
    ("POST", "/api/v1/files/{file_id}/documents"): CITIZEN,
    ("GET", "/api/v1/files/{file_id}/documents/{code}"): READERS_OF_FILES,
    ("POST", "/api/v1/files/{file_id}/payments"): CITIZEN,
    ("GET", "/api/v1/inbox"): OFFICIALS | CITIZEN,
    ("GET", "/api/v1/inbox/counts"): OFFICIALS,
    ("GET", "/api/v1/inbox/officials"): OFFICIALS,
    ("GET", "/api/v1/notification-preferences"): CITIZEN,
    ("PATCH", "/api/v1/notification-preferences"): CITIZEN,
    ("GET", "/api/v1/notifications"): CITIZEN,
    ("POST", "/api/v1/notifications/read"): CITIZEN,
    ("GET", "/api/v1/audit/events"): AUDITOR,
    ("GET", "/api/v1/audit/files"): AUDITOR,
    ("GET", "/api/v1/audit/files/{file_id}/events"): AUDITOR,
    ("GET", "/api/v1/admin/staff"): ADMINISTRATOR,
    ("POST", "/api/v1/admin/staff"): ADMINISTRATOR,
    ("PATCH", "/api/v1/admin/staff/{user_id}"): ADMINISTRATOR,
    ("GET", "/api/v1/admin/notifications"): ADMINISTRATOR,
    ("POST", "/api/v1/admin/notifications/{message_id}/resend"): ADMINISTRATOR,
}

# One user per role (officials of Kochi), and the anonymous caller.
CALLERS = {
    "anonymous": None,
    "citizen": "citizen",
    **{role: f"{role}.kochi" for role in sorted(OFFICIALS)},
    "auditor": "auditor",
    "administrator": "admin",
    "akshaya_operator": "akshaya.edappally",
}
# Ending the caller's own session would end the token the matrix reuses;
# logout has its own tests (test_access_http.py).
NOT_CALLED = {("POST", "/api/v1/auth/logout")}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("matrix")) as running:
        yield running


@pytest.fixture(scope="module")
def kochi_file(platform):
    body = citizen.application(platform)
    reply = citizen.submit(platform, body)
    assert reply.status_code == 201, reply.text
    # The log's checkpoint exists (before it, GET /log/checkpoint is a 503).
    wait_for(
        lambda: requests.get(f"{platform.base_url}/api/v1/log/checkpoint", timeout=10).ok,
        message="the first checkpoint",
    )
    return reply.json(), next(iter(body["documents"]))


def test_the_document_states_the_pinned_matrix(platform):
    """Every endpoint the gateway documents is in the matrix, with the roles
    the matrix gives it, and nothing in the matrix is missing."""
    document = requests.get(f"{platform.base_url}/api/v1/openapi.json", timeout=10).json()
    documented = {
        (method.upper(), path): frozenset(operation["x-allowed-roles"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert documented == MATRIX


def _concrete(path, file_id, document_code):
    values = {
        "file_id": file_id,
        "code": document_code if "documents" in path else "birth-certificate",
        "user_id": str(uuid.uuid4()),
        "message_id": str(uuid.uuid4()),
        "content_hash": "0" * 64,
        "number": "KL-EKM-KOC/BR/2026/000001",
        "global_position": "1",
    }
    if "local-bodies" in path:
        values["code"] = "KL-EKM-KOC"
    return re.sub(r"{(\w+)}", lambda match: values[match.group(1)], path)


def test_every_role_against_every_endpoint(platform, kochi_file):
    file, document_code = kochi_file
    refusals = []
    checked = 0
    for (method, path), allowed in MATRIX.items():
        if (method, path) in NOT_CALLED:
            continue
        url = platform.base_url + _concrete(path, file["file_id"], document_code)
        for role, user in CALLERS.items():
            headers = platform.as_user(user) if user else {}
            # No body: an allowed caller gets a 4xx about the body, never a
            # role refusal; nothing is changed by the matrix itself.
            reply = requests.request(method, url, headers=headers, timeout=10)
            may = "public" in allowed or role in allowed
            if may:
                # A public endpoint may still want its own proof (a signed
                # payment callback answers 401 without one); never a role refusal.
                refused = (403,) if "public" in allowed else (401, 403)
                ok = reply.status_code not in refused and reply.status_code < 500
            elif user is None:
                ok = reply.status_code == 401
            else:
                ok = reply.status_code == 403
            checked += 1
            if not ok:
                refusals.append((method, path, role, may, reply.status_code, reply.text[:120]))
    assert refusals == []
    assert checked > 200


def _get_file(platform, user, file_id):
    return requests.get(
        f"{platform.base_url}/api/v1/files/{file_id}", headers=platform.as_user(user), timeout=10
    )


def test_a_file_is_read_only_by_its_applicant_its_bodys_officials_and_auditors(
    platform, kochi_file
):
    file, document_code = kochi_file
    expected = {
        "citizen": 200,  # the applicant
        "citizen.dubai": 404,  # another citizen
        "clerk.kochi": 200,  # inside the jurisdiction
        "health_inspector.kochi": 200,
        "clerk.tvm": 404,  # outside it
        "auditor": 200,  # reads everything
        "admin": 403,  # administers people, not files
        "akshaya.edappally": 404,  # reads only the files it filed
    }
    seen = {user: _get_file(platform, user, file["file_id"]).status_code for user in expected}
    assert seen == expected
    document = {
        user: requests.get(
            f"{platform.base_url}/api/v1/files/{file['file_id']}/documents/{document_code}",
            headers=platform.as_user(user),
            timeout=10,
        ).status_code
        for user in expected
    }
    assert document == expected


def test_only_the_role_the_file_waits_on_in_its_body_acts_and_the_auditor_changes_nothing(
    platform,
):
    file = citizen.submit(platform, citizen.application(platform)).json()
    file_id = file["file_id"]
    assert file["waits_on"] == "clerk"
    assert (
        actions.act(platform, "clerk.tvm", file_id, "verify", remarks="checked").status_code == 404
    )
    assert (
        actions.act(platform, "secretary.kochi", file_id, "verify", remarks="checked").status_code
        == 403
    )
    assert actions.act(platform, "citizen", file_id, "verify", remarks="checked").status_code == 403
    assert actions.act(platform, "auditor", file_id, "verify", remarks="checked").status_code == 403
    assert (
        actions.act(platform, "citizen.dubai", file_id, "verify", remarks="checked").status_code
        == 404
    )
    assert _get_file(platform, "citizen", file_id).json()["version"] == 1
    assert (
        actions.act(platform, "clerk.kochi", file_id, "verify", remarks="checked").status_code
        == 200
    )
    events = requests.get(
        f"{platform.base_url}/api/v1/audit/files/{file_id}/events",
        headers=platform.as_user("auditor"),
        timeout=10,
    ).json()["events"]
    # The actor's id, roles and jurisdiction are in the metadata of the event.
    metadata = events[-1]["metadata"]
    assert metadata["actor_roles"] == ["clerk"] and metadata["local_body"] == "KL-EKM-KOC"
    assert metadata["wards"] == []


def test_an_auditor_finds_a_file_by_its_number_to_read_its_events(platform, kochi_file):
    """The number every notice prints is how a file is spoken of; the
    auditor turns it into the id the events are read by. Nobody else may."""
    file, _ = kochi_file

    def find(number: str, user: str = "auditor") -> requests.Response:
        return requests.get(
            f"{platform.base_url}/api/v1/audit/files",
            params={"number": number},
            headers=platform.as_user(user),
            timeout=10,
        )

    found = wait_for(
        lambda: (reply := find(file["file_number"])).status_code == 200 and reply.json(),
        timeout=30,
        message="the file's number in the projection",
    )
    assert found == {"file_id": file["file_id"], "file_number": file["file_number"]}
    assert find("KL-EKM-KOC/BR/1999/999999").status_code == 404
    assert find("not a number").status_code == 404
    assert find(file["file_number"], user="clerk.kochi").status_code == 403
