"""A citizen's own files, and a file tracked by its number without signing
in, through the gateway over the real services: both are read from the
workflow service's projection, so every check waits for it to catch up."""

import pytest
import requests

from tests.support import actions, citizen
from tests.support.citizen import KOCHI
from tests.support.platform import running_platform
from tests.support.waiting import wait_for

PROBLEM = "application/problem+json"
# What "my files" says of each file.
APPLICANT_FILE_KEYS = {
    "file_id",
    "file_number",
    "service_code",
    "local_body",
    "state",
    "waits_on",
    "needs_applicant",
    "state_due_at",
    "submitted_at",
    "updated_at",
    "version",
    "filed_by",
}
# All that anyone holding a number learns: nothing about a person.
TRACKED_KEYS = {
    "file_number",
    "service_code",
    "local_body",
    "state",
    "waits_on",
    "state_due_at",
    "overdue",
    "updated_at",
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("my-files")) as running:
        yield running


def _file(platform, user="citizen"):
    reply = citizen.submit(platform, citizen.application(platform, user=user), user=user)
    assert reply.status_code == 201, reply.text
    return reply.json()


def _my_files(platform, user="citizen", **params):
    reply = requests.get(
        f"{platform.base_url}/api/v1/files",
        params=params,
        headers=platform.as_user(user),
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def _listed(platform, user="citizen"):
    """The caller's files by id, in the order the list gives them."""
    return {entry["file_id"]: entry for entry in _my_files(platform, user, limit=200)["files"]}


def _track(platform, number):
    return requests.get(f"{platform.base_url}/api/v1/track/{number}", timeout=10)


@pytest.fixture(scope="module")
def two_files(platform):
    """Two applications of the citizen's, the second filed after the first."""
    first, second = _file(platform), _file(platform)
    wait_for(
        lambda: {first["file_id"], second["file_id"]} <= set(_listed(platform)),
        message="both files in the citizen's list",
    )
    return first, second


def test_a_citizen_sees_their_own_files_newest_first_and_no_one_elses(platform, two_files):
    first, second = two_files
    elsewhere = _file(platform, "citizen.dubai")
    wait_for(lambda: elsewhere["file_id"] in _listed(platform, "citizen.dubai"))

    listed = _listed(platform)
    ours = [file_id for file_id in listed if file_id in (first["file_id"], second["file_id"])]
    assert ours == [second["file_id"], first["file_id"]]
    submitted = [entry["submitted_at"] for entry in listed.values()]
    assert submitted == sorted(submitted, reverse=True)
    assert elsewhere["file_id"] not in listed

    entry = listed[first["file_id"]]
    assert set(entry) == APPLICANT_FILE_KEYS
    assert entry["file_number"] == first["file_number"]
    assert (entry["service_code"], entry["local_body"]) == ("birth-certificate", KOCHI)
    assert (entry["state"], entry["waits_on"], entry["version"]) == ("submitted", "clerk", 1)
    assert entry["needs_applicant"] is False
    assert entry["state_due_at"] == first["state_due_at"] is not None
    assert entry["submitted_at"] == first["submitted_at"]

    others = _listed(platform, "citizen.dubai")
    assert first["file_id"] not in others and second["file_id"] not in others
    assert elsewhere["file_id"] in others


def test_a_file_returned_for_clarification_is_marked_as_needing_the_applicant(platform):
    file = _file(platform)
    actions.take(
        platform,
        "clerk.kochi",
        file["file_id"],
        "return_for_clarification",
        remarks="Attach the hospital discharge summary",
        version=1,
    )
    entry = wait_for(
        lambda: (
            (found := _listed(platform).get(file["file_id"])) and found["version"] == 2 and found
        ),
        message="the return projected",
    )
    assert entry["needs_applicant"] is True
    assert entry["waits_on"] == "applicant"
    assert entry["state_due_at"] is None  # the office's clock stops while the citizen answers


def test_pages_of_one_walk_every_file_in_the_same_order(platform, two_files):
    whole = list(_listed(platform))
    walked, cursor, pages = [], None, 0
    while True:
        page = _my_files(platform, limit=1, **({"cursor": cursor} if cursor else {}))
        assert len(page["files"]) == 1
        walked += [entry["file_id"] for entry in page["files"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages <= len(whole)
    assert walked == whole
    assert {file["file_id"] for file in two_files} <= set(walked)

    bad = requests.get(
        f"{platform.base_url}/api/v1/files",
        params={"cursor": "not-a-cursor"},
        headers=platform.as_user("citizen"),
        timeout=10,
    )
    assert bad.status_code == 422 and bad.headers["Content-Type"] == PROBLEM
    assert [problem["field"] for problem in bad.json()["problems"]] == ["cursor"]


def test_anyone_tracks_a_file_by_its_number_and_learns_nothing_personal(platform):
    file = _file(platform)
    number = file["file_number"]
    assert number.count("/") == 3
    reply = wait_for(
        lambda: (found := _track(platform, number)).status_code == 200 and found,
        message="the file tracked",
    )
    tracked = reply.json()
    assert set(tracked) == TRACKED_KEYS
    assert tracked == {
        "file_number": number,
        "service_code": "birth-certificate",
        "local_body": KOCHI,
        "state": "submitted",
        "waits_on": "clerk",
        "state_due_at": file["state_due_at"],
        "overdue": False,
        "updated_at": file["updated_at"],
    }
    assert file["applicant_id"] not in reply.text

    verified = actions.take(platform, "clerk.kochi", file["file_id"], "verify", version=1)
    moved = wait_for(
        lambda: (now := _track(platform, number).json())["state"] == verified["state"] and now,
        message="the decision tracked",
    )
    assert moved["waits_on"] == verified["waits_on"] != "clerk"
    assert moved["updated_at"] == verified["updated_at"]
    assert set(moved) == TRACKED_KEYS


@pytest.mark.parametrize(
    "number",
    [
        "KL-EKM-KOC/BR/1999/999999",  # the shape of a number, but no file has it
        "not-a-number",
        "KL-EKM-KOC/BR/2026/000001/extra",
        "KL-EKM-KOC/BR/2026/1",
        "x" * 300,
    ],
)
def test_a_number_no_file_has_is_not_found(platform, number):
    reply = _track(platform, number)
    assert reply.status_code == 404
    assert reply.headers["Content-Type"] == PROBLEM
    assert reply.json()["status"] == 404
