"""The auditor's and the administrator's pages, with the gateway faked at
the HTTP boundary (tests/unit/test_portal.py's FakeGateway): the chain of
a file's events verified in the portal itself, whatever the gateway says;
the export streamed with a token that never reaches the browser; staff
created with every problem at once and a first password shown once; roles,
jurisdiction and standing changed."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from ksmart_common.canonical import GENESIS_HASH
from ksmart_common.envelope import Envelope, StoredEvent, file_stream_id, to_document
from ksmart_portal import chain_check
from tests.unit.test_portal import CITIZEN_ME, TOKENS, csrf_of, portal

FILE_ID = "3f6c1a52-8a39-4c1e-9d3e-2b7f0f0b6a11"
NUMBER = "KL-EKM-KOC/BR/2026/000123"
AUDITOR_ME = {**CITIZEN_ME, "user_id": "u-a", "username": "auditor", "roles": ["auditor"]}
ADMIN_ME = {**CITIZEN_ME, "user_id": "u-x", "username": "admin", "roles": ["administrator"]}
OFFICIAL_ID = "9b2f7c1e-0d4a-4f3e-8a61-3c5d2e1f0a77"
OFFICIAL = {
    "user_id": OFFICIAL_ID,
    "username": "clerk.kochi.9",
    "display_name": "Anitha Menon",
    "kind": "official",
    "roles": ["clerk"],
    "local_body": "KL-EKM-KOC",
    "wards": [3],
    "disabled": False,
    "locked_until": None,
}
KOCHI = {"code": "KL-EKM-KOC", "name": {"en": "Kochi Corporation", "ml": "കൊച്ചി കോർപ്പറേഷൻ"}}


def _envelopes(count: int = 3, file_id: str = FILE_ID) -> list[Envelope]:
    """A file's events, chained as the event store chains them."""
    made, previous = [], GENESIS_HASH
    for version in range(1, count + 1):
        envelope = Envelope(
            event_id=uuid.uuid4(),
            stream_id=file_stream_id(file_id),
            stream_version=version,
            global_position=10 * version,
            event_type="ApplicationSubmitted" if version == 1 else "ActionTaken",
            schema_version=1,
            data={"file_number": NUMBER} if version == 1 else {"action": "verify"},
            metadata={"actor_id": "u-1", "actor_roles": ["clerk"], "correlation_id": "c-1"},
            recorded_at=datetime(2026, 12, 5, 10, version, tzinfo=UTC),
            prev_hash=previous,
            hash="",
        ).with_hash()
        made.append(envelope)
        previous = envelope.hash
    return made


def _documents(envelopes: list[Envelope]) -> list[dict]:
    return [to_document(StoredEvent.of(envelope)) for envelope in envelopes]


def _staff_signed_in(me: dict, routes: dict) -> tuple:
    client, fake = portal(
        {("POST", "/auth/token"): (200, TOKENS), ("GET", "/me"): (200, me), **routes}
    )
    token = csrf_of(client.get("/staff/sign-in").data)
    signed = client.post(
        "/staff/sign-in",
        data={"username": me["username"], "password": "p" * 12, "csrf_token": token},
    )
    assert signed.status_code == 303
    return client, fake


# -- the chain, checked alone ----------------------------------------------------


def test_an_intact_chain_verifies_and_no_chain_at_all_does_not():
    assert chain_check.check_chain(FILE_ID, _documents(_envelopes())).verified
    assert not chain_check.check_chain(FILE_ID, []).verified


def test_each_kind_of_break_is_named_at_the_event_where_it_is():
    first, second, third = _envelopes()
    altered = replace(second, data={"action": "approve"})  # hash left as it was
    assert _problems([first, altered, third]) == [[], [chain_check.ALTERED], []]
    # Removed: the third follows the first, numbered 3, linked to the second's hash.
    assert _problems([first, third]) == [
        [],
        [chain_check.OUT_OF_SEQUENCE, chain_check.UNLINKED],
    ]
    swapped = _problems([first, third, second])
    assert swapped[1] and swapped[2] and chain_check.OUT_OF_ORDER in swapped[2]
    stranger = _envelopes(1, file_id=str(uuid.uuid4()))[0]
    assert chain_check.OTHER_FILE in _problems([stranger])[0]
    broken = chain_check.check_chain(FILE_ID, [{"event_type": "Nothing"}, "not even an object"])
    assert [event.problems for event in broken.events] == [
        (chain_check.NOT_AN_EVENT,),
        (chain_check.NOT_AN_EVENT,),
    ]


def _problems(envelopes: list[Envelope]) -> list[list[str]]:
    checked = chain_check.check_chain(FILE_ID, _documents(envelopes))
    return [list(event.problems) for event in checked.events]


# -- the auditor's pages -----------------------------------------------------------


def test_the_auditor_finds_a_file_by_its_number_or_its_id_and_nobody_else_may():
    found = {"file_id": FILE_ID, "file_number": NUMBER}

    def by_number(request):
        return (200, found) if NUMBER in request.url.replace("%2F", "/") else (404, {"title": "no"})

    client, fake = _staff_signed_in(AUDITOR_ME, {("GET", "/audit/files"): by_number})
    assert client.get("/account").status_code == 200
    assert 'href="/audit"' in client.get("/account").data.decode()
    by_id = client.get(f"/audit?file={FILE_ID.upper()}")
    assert by_id.headers["Location"] == f"/audit/files/{FILE_ID}"
    reached = client.get("/audit", query_string={"file": NUMBER})
    assert reached.status_code == 303 and reached.headers["Location"] == f"/audit/files/{FILE_ID}"
    assert fake.sent[-1].headers["Authorization"] == "Bearer access-1"
    unknown = client.get("/audit", query_string={"file": "KL-EKM-KOC/BR/2026/999999"})
    assert unknown.status_code == 400
    assert b"No file has this number." in unknown.data and b'aria-invalid="true"' in unknown.data
    sent = len(fake.sent)
    for wrong in ("", "not a number"):
        page = client.get("/audit", query_string={"file": wrong})
        assert page.status_code == 400 and b'href="#file"' in page.data
    assert len(fake.sent) == sent, "nothing asked of the gateway for what is no file"

    citizen, _ = portal({})
    assert citizen.get("/audit").headers["Location"] == "/staff/sign-in"
    admin, _ = _staff_signed_in(ADMIN_ME, {})
    assert admin.get("/audit").status_code == 404
    assert admin.get(f"/audit/files/{FILE_ID}").status_code == 404


def _audit_reply(envelopes: list[Envelope], verified: bool = True) -> tuple[int, dict]:
    return 200, {
        "file_id": FILE_ID,
        "verified": verified,
        "problems": [],
        "events": _documents(envelopes),
    }


def test_the_chain_is_verified_in_the_portal_and_a_break_is_named_at_its_event():
    events = _envelopes()
    route = ("GET", f"/audit/files/{FILE_ID}/events")
    client, _ = _staff_signed_in(AUDITOR_ME, {route: _audit_reply(events)})
    page = client.get(f"/audit/files/{FILE_ID}").data.decode()
    assert "Chain verified" in page and "All 3 events checked" in page
    assert f"File {NUMBER}" in page
    assert "The platform's own check agrees" in page
    assert "SHA-256" in page, "the page says how it was checked"
    assert events[1].hash in page and "ActionTaken" in page

    # The gateway says all is well; the portal sees the second event altered.
    tampered = [events[0], replace(events[1], data={"action": "approve"}), events[2]]
    client, _ = _staff_signed_in(AUDITOR_ME, {route: _audit_reply(tampered, verified=True)})
    page = client.get(f"/audit/files/{FILE_ID}").data.decode()
    assert "Chain not verified" in page and "Chain verified" not in page
    assert "1 event fails the check" in page
    assert '<a href="#event-2">Event 2</a>' in page
    assert "the event was changed after it was recorded" in page
    assert "Hash of its content now" in page

    client.get("/language/ml")
    page = client.get(f"/audit/files/{FILE_ID}").data.decode()
    assert "ശൃംഖല സ്ഥിരീകരിക്കാനായില്ല" in page


def test_a_file_the_gateway_does_not_know_is_not_found():
    client, _ = _staff_signed_in(AUDITOR_ME, {})
    assert client.get(f"/audit/files/{FILE_ID}").status_code == 404
    assert client.get(f"/audit/files/{FILE_ID}/export").status_code == 404


def test_the_export_is_json_lines_fetched_with_the_token_and_names_the_offline_check():
    events = _envelopes()
    client, fake = _staff_signed_in(
        AUDITOR_ME, {("GET", f"/audit/files/{FILE_ID}/events"): _audit_reply(events)}
    )
    page = client.get(f"/audit/files/{FILE_ID}").data.decode()
    assert f'href="/audit/files/{FILE_ID}/export"' in page
    assert f"ksmart-audit verify --file {FILE_ID} --input file-{FILE_ID}-events.jsonl" in page
    export = client.get(f"/audit/files/{FILE_ID}/export")
    assert export.status_code == 200 and export.mimetype == "application/x-ndjson"
    assert export.headers["Content-Disposition"] == (
        f'attachment; filename="file-{FILE_ID}-events.jsonl"'
    )
    assert export.headers["Cache-Control"] == "no-store"
    lines = export.data.decode().splitlines()
    assert [json.loads(line) for line in lines] == _documents(events)
    assert fake.sent[-1].headers["Authorization"] == "Bearer access-1"
    exposed = export.data + str(export.headers).encode() + page.encode()
    assert b"access-1" not in exposed and b"refresh-1" not in exposed


# -- the administrator's pages ---------------------------------------------------

PASSWORD = re.compile(r"^[a-z2-9]{4}(-[a-z2-9]{4}){3}$")


def _admin(routes: dict | None = None) -> tuple:
    return _staff_signed_in(
        ADMIN_ME,
        {
            ("GET", "/admin/staff"): (200, {"staff": [OFFICIAL]}),
            ("GET", "/local-bodies"): (200, {"local_bodies": [KOCHI]}),
            **(routes or {}),
        },
    )


def _last_sent(fake, method: str) -> dict:
    return json.loads(next(r for r in reversed(fake.sent) if r.method == method).body)


def test_the_staff_list_filters_by_local_body_and_role():
    client, fake = _admin()
    assert client.get("/account").status_code == 200
    page = client.get("/staff").data.decode()
    assert "Anitha Menon" in page and "clerk.kochi.9" in page and "Kochi Corporation" in page
    assert f'href="/staff/{OFFICIAL_ID}"' in page
    page = client.get("/staff", query_string={"local_body": "KL-EKM-KOC", "role": "secretary"})
    assert fake.sent[-2].path_url == "/api/v1/admin/staff?local_body=KL-EKM-KOC&kind=official"
    assert "Anitha Menon" not in page.data.decode(), "a clerk is no secretary"
    auditor, _ = _staff_signed_in(AUDITOR_ME, {})
    assert auditor.get("/staff").status_code == 404


def test_a_new_official_every_problem_at_once_then_created_with_a_password_shown_once():
    def create(request):
        sent = json.loads(request.body)
        if sent["username"] == "X":
            return 422, {
                "title": "Invalid input",
                "problems": [
                    {"field": "username", "message": "3-64 lower-case letters"},
                    {"field": "display_name", "message": "Shorter than minimum length 1."},
                    {"field": "roles", "message": "Shorter than minimum length 1."},
                    {"field": "wards.0", "message": "Not a valid integer."},
                ],
            }
        return 201, {**OFFICIAL, "username": sent["username"]}

    client, fake = _admin({("POST", "/admin/staff"): create})
    form = {"csrf_token": csrf_of(client.get("/staff/new").data)}
    bad = client.post(
        "/staff/new",
        data={**form, "username": "X", "display_name": "", "kind": "official", "wards": "three"},
    )
    assert bad.status_code == 400
    page = bad.data.decode()
    for field in ("username", "display_name", "roles", "local_body", "wards"):
        assert f'href="#{field}"' in page, field
        assert f'id="{field}-error-1"' in page, field
    assert _last_sent(fake, "POST")["wards"] == ["three"], "sent as typed: named by the API"
    assert 'value="three"' in page, "what was typed is kept"

    good = client.post(
        "/staff/new",
        data={
            **form,
            "username": "clerk.kochi.9",
            "display_name": "Anitha Menon",
            "kind": "official",
            "roles": ["clerk", "section_officer"],
            "local_body": "KL-EKM-KOC",
            "wards": "3, 7",
        },
    )
    assert good.status_code == 303 and good.headers["Location"] == f"/staff/{OFFICIAL_ID}"
    sent = _last_sent(fake, "POST")
    password = sent.pop("password")
    assert PASSWORD.match(password)
    assert sent == {
        "username": "clerk.kochi.9",
        "display_name": "Anitha Menon",
        "kind": "official",
        "roles": ["clerk", "section_officer"],
        "local_body": "KL-EKM-KOC",
        "wards": [3, 7],
    }
    shown = client.get(f"/staff/{OFFICIAL_ID}")
    assert (
        password in shown.data.decode() and "The account has been created." in shown.data.decode()
    )
    assert shown.headers["Cache-Control"] == "no-store"
    assert password not in client.get(f"/staff/{OFFICIAL_ID}").data.decode(), "shown once"


def test_other_kinds_are_sent_with_their_one_role_and_no_jurisdiction():
    client, fake = _admin({("POST", "/admin/staff"): (201, {**OFFICIAL, "kind": "auditor"})})
    client.post(
        "/staff/new",
        data={
            "csrf_token": csrf_of(client.get("/staff/new").data),
            "username": "auditor.2",
            "display_name": "Second Auditor",
            "kind": "auditor",
            "roles": ["clerk"],
            "local_body": "KL-EKM-KOC",
            "wards": "3",
        },
    )
    sent = _last_sent(fake, "POST")
    assert (sent["roles"], sent["local_body"], sent["wards"]) == (["auditor"], None, [])


def test_roles_jurisdiction_and_standing_are_changed_and_confirmed():
    def patch(request):
        change = json.loads(request.body)
        if change.get("roles") == []:
            return 422, {
                "problems": [{"field": "roles", "message": "Shorter than minimum length 1."}]
            }
        return 200, {"user": {**OFFICIAL, **change}}

    route = ("PATCH", f"/admin/staff/{OFFICIAL_ID}")
    client, fake = _admin({route: patch})
    form = {"csrf_token": csrf_of(client.get(f"/staff/{OFFICIAL_ID}").data)}
    changed = client.post(
        f"/staff/{OFFICIAL_ID}/jurisdiction",
        data={**form, "roles": ["secretary"], "local_body": "KL-EKM-KOC", "wards": ""},
    )
    assert changed.status_code == 303
    assert _last_sent(fake, "PATCH") == {
        "roles": ["secretary"],
        "local_body": "KL-EKM-KOC",
        "wards": [],
    }
    assert "have been saved" in client.get(f"/staff/{OFFICIAL_ID}").data.decode()
    refused = client.post(
        f"/staff/{OFFICIAL_ID}/jurisdiction", data={**form, "local_body": "KL-EKM-KOC"}
    )
    assert refused.status_code == 400
    assert b'id="roles-error-1"' in refused.data and b"Choose at least one role" in refused.data

    disabled = client.post(f"/staff/{OFFICIAL_ID}/standing", data={**form, "disabled": "true"})
    assert disabled.status_code == 303
    assert _last_sent(fake, "PATCH") == {"disabled": True}
    assert "can no longer sign in" in client.get(f"/staff/{OFFICIAL_ID}").data.decode()
    assert client.post(f"/staff/{OFFICIAL_ID}/standing", data={**form}).status_code == 400


def test_the_last_administrator_cannot_be_disabled_and_the_page_says_why():
    admin_member = {**OFFICIAL, "kind": "administrator", "roles": ["administrator"]}
    problem = {"problems": [{"field": "disabled", "message": "the last administrator"}]}
    client, _ = _admin(
        {
            ("GET", "/admin/staff"): (200, {"staff": [admin_member]}),
            ("PATCH", f"/admin/staff/{OFFICIAL_ID}"): (422, problem),
        }
    )
    page = client.get(f"/staff/{OFFICIAL_ID}").data.decode()
    assert "Change roles and jurisdiction" not in page, "an administrator has no jurisdiction"
    refused = client.post(
        f"/staff/{OFFICIAL_ID}/standing",
        data={"csrf_token": csrf_of(page.encode()), "disabled": "true"},
    )
    assert refused.status_code == 400
    assert b'href="#standing"' in refused.data and b"the last administrator who can" in refused.data
