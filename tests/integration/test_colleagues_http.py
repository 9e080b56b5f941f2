"""Whom an official may give a file to, over the real services: GET
/api/v1/inbox/officials lists the active officials of the caller's own
local body who hold a role (names only), and a secretary gives a file to
one of them by the id the list names."""

import pytest
import requests

from tests.support import citizen
from tests.support.platform import running_platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("colleagues")) as running:
        yield running


def _colleagues(platform, user: str, role: str) -> requests.Response:
    return requests.get(
        f"{platform.base_url}/api/v1/inbox/officials",
        params={"role": role},
        headers=platform.as_user(user),
        timeout=10,
    )


def test_an_official_lists_the_officials_of_their_own_body_who_hold_a_role(platform):
    clerks = _colleagues(platform, "secretary.kochi", "clerk")
    assert clerks.status_code == 200, clerks.text
    listed = clerks.json()["officials"]
    assert [person["username"] for person in listed] == ["clerk.kochi"], "not clerk.tvm"
    assert set(listed[0]) == {"user_id", "username", "display_name"}, "names only"
    from_tvm = _colleagues(platform, "clerk.tvm", "clerk").json()["officials"]
    assert [person["username"] for person in from_tvm] == ["clerk.tvm"]
    assert _colleagues(platform, "clerk.kochi", "mayor").status_code == 422
    assert _colleagues(platform, "citizen", "clerk").status_code == 403


def test_a_secretary_gives_a_file_to_an_official_the_list_names(platform):
    file = citizen.submit(platform, citizen.application(platform)).json()
    clerk = _colleagues(platform, "secretary.kochi", "clerk").json()["officials"][0]
    given = requests.post(
        f"{platform.base_url}/api/v1/files/{file['file_id']}/assignment",
        json={"official_id": clerk["user_id"]},
        headers=platform.as_user("secretary.kochi"),
        timeout=10,
    )
    assert given.status_code == 200, given.text
    assert given.json()["assigned_to"] == clerk["user_id"]
