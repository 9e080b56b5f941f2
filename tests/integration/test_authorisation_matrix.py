"""Who may call what: every role against every endpoint of the OpenAPI
document, and every kind of caller against a file inside and outside their
reach. The gateway refuses a role an endpoint is not for (403, or 401 with no
token); the services that hold the data refuse what the caller's
jurisdiction does not cover (404: a file out of reach is not even confirmed
to exist)."""

import re
import uuid

import pytest
import requests

from ksmart_common.domain.roles import OFFICIAL_ROLES
from tests.support import actions, citizen
from tests.support.platform import running_platform

# One user per role (officials of Kochi), and the anonymous caller.
CALLERS = {
    "anonymous": None,
    "citizen": "citizen",
    **{role: f"{role}.kochi" for role in OFFICIAL_ROLES},
    "auditor": "auditor",
    "administrator": "admin",
}
# Ending the caller's own session would end the token the matrix reuses;
# logout has its own tests (test_access_http.py).
NOT_IN_MATRIX = {("POST", "/api/v1/auth/logout")}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("matrix")) as running:
        yield running


@pytest.fixture(scope="module")
def kochi_file(platform):
    body = citizen.application(platform)
    reply = citizen.submit(platform, body)
    assert reply.status_code == 201, reply.text
    return reply.json(), next(iter(body["documents"]))


def _endpoints(platform):
    document = requests.get(f"{platform.base_url}/api/v1/openapi.json", timeout=10).json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if (method.upper(), path) not in NOT_IN_MATRIX:
                yield method.upper(), path, set(operation["x-allowed-roles"])


def _concrete(path, file_id, document_code):
    values = {
        "file_id": file_id,
        "code": document_code if "documents" in path else "birth-certificate",
        "user_id": str(uuid.uuid4()),
        "message_id": str(uuid.uuid4()),
        "content_hash": "0" * 64,
        "number": "KL-EKM-KOC/BR/2026/000001",
    }
    if "local-bodies" in path:
        values["code"] = "KL-EKM-KOC"
    return re.sub(r"{(\w+)}", lambda match: values[match.group(1)], path)


def test_every_role_against_every_endpoint(platform, kochi_file):
    file, document_code = kochi_file
    refusals = []
    checked = 0
    for method, path, allowed in _endpoints(platform):
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
