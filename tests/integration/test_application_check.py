"""Checking an application without filing it, on the real services
(POST /api/v1/services/{code}/validation): every problem a submission would
name, at once, with the office left out or given; a complete application
has none; nothing is ever stored."""

import pytest
import requests
import sqlalchemy as sa

from tests.support import citizen
from tests.support.platform import running_platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("check")) as running:
        yield running


def _check(platform, body, service="birth-certificate", user="citizen"):
    return requests.post(
        f"{platform.base_url}/api/v1/services/{service}/validation",
        json=body,
        headers=platform.as_user(user),
        timeout=10,
    )


def _events(platform) -> int:
    with platform.engine("applications").connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()


def test_without_an_office_every_other_problem_is_named_at_once_and_nothing_is_stored(platform):
    before = _events(platform)
    reply = _check(platform, {"form": {"sex": "unknown"}})
    assert reply.status_code == 200, reply.text
    fields = {problem["field"] for problem in reply.json()["problems"]}
    assert {"form.sex", "form.date_of_birth", "form.mother_name"} <= fields
    assert "documents.parent_identity_proof" in fields
    assert "local_body" not in fields, "no office given: the office is not checked"
    assert _events(platform) == before


def test_a_complete_application_has_no_problem_and_a_wrong_office_is_named(platform):
    body = citizen.application(platform)
    del body["service_code"]
    complete = _check(platform, body)
    assert complete.status_code == 200 and complete.json() == {"problems": []}
    without_office = _check(platform, {**body, "local_body": None})
    assert without_office.json() == {"problems": []}
    elsewhere = _check(platform, {**body, "local_body": "KL-EKM-NOWHERE"})
    assert [p["field"] for p in elsewhere.json()["problems"]] == ["local_body"]


def test_another_citizens_uploads_are_not_this_citizens_documents(platform):
    body = citizen.application(platform)
    del body["service_code"]
    stranger = _check(platform, body, user="citizen.dubai")
    assert {p["code"] for p in stranger.json()["problems"]} == {"document_not_uploaded"}


def test_an_unknown_service_is_not_found_and_a_malformed_body_is_refused(platform):
    assert _check(platform, {"form": {}}, service="no-such-service").status_code == 404
    malformed = _check(platform, {"form": {}, "service_code": "birth-certificate"})
    assert malformed.status_code == 422
    assert [p["field"] for p in malformed.json()["problems"]] == ["service_code"]


def test_counter_staff_check_a_citizens_application_with_their_own_scans(platform):
    """At the counter the scans are the operator's uploads: checked as theirs."""
    uploaded_by_a_citizen = citizen.application(platform)
    del uploaded_by_a_citizen["service_code"]
    theirs = _check(platform, uploaded_by_a_citizen, user="akshaya.edappally")
    assert theirs.status_code == 200, theirs.text
    assert {p["code"] for p in theirs.json()["problems"]} == {"document_not_uploaded"}
    # The same scans, uploaded by the operator (the same bytes, so checked first).
    body = citizen.application(platform, user="akshaya.edappally")
    del body["service_code"]
    mine = _check(platform, body, user="akshaya.edappally")
    assert mine.status_code == 200 and mine.json() == {"problems": []}
