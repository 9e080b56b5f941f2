"""An official's pages with the gateway faked at the HTTP boundary: the
inbox (counts, overdue in words, filters as the gateway's query, paging),
a file's page (answers with their labels, documents opened inline, only
the actions its state allows, remarks), a stale decision and assigning."""

from __future__ import annotations

import json

import requests

from ksmart_portal.security import DOCUMENT_CONTENT_SECURITY_POLICY
from tests.unit.test_portal import TOKENS, csrf_of, portal

FILE_ID = "9a1c2b3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"
CLERK_ID = "0b7f1c52-1111-4c1e-9d3e-2b7f0f0b6a11"
OTHER_CLERK_ID = "0b7f1c52-2222-4c1e-9d3e-2b7f0f0b6a11"
CLERK = {
    "user_id": CLERK_ID,
    "username": "clerk.kochi",
    "roles": ["clerk"],
    "local_body": "KL-EKM-KOC",
    "wards": [],
}
SECRETARY = {**CLERK, "user_id": "5ec0", "username": "secretary.kochi", "roles": ["secretary"]}
DEFINITION = {
    "code": "residence-certificate",
    "name": {"en": "Residence certificate", "ml": "താമസ സർട്ടിഫിക്കറ്റ്"},
    "fields": [
        {"name": "full_name", "type": "string", "label": {"en": "Full name"}},
        {
            "name": "purpose",
            "type": "choice",
            "label": {"en": "Purpose"},
            "choices": [{"value": "school", "label": {"en": "School admission"}}],
        },
        {"name": "owns_house", "type": "boolean", "label": {"en": "Owns the house"}},
    ],
    "documents": [{"code": "id_proof", "label": {"en": "Identity proof"}}],
    "workflow": {
        "states": {
            "submitted": {"label": {"en": "Awaiting the clerk"}, "waits_on": "clerk"},
            "verified": {"label": {"en": "Awaiting the secretary"}, "waits_on": "secretary"},
            "returned": {"label": {"en": "Returned to the applicant"}, "waits_on": "applicant"},
            "approved": {"label": {"en": "Approved"}, "final": True, "outcome": "granted"},
        },
        "actions": [
            {"name": "verify", "label": {"en": "Verify"}, "requires_remarks": False},
            {
                "name": "return_for_clarification",
                "label": {"en": "Return for clarification"},
                "requires_remarks": True,
            },
        ],
    },
}
LISTED = {
    "file_id": FILE_ID,
    "file_number": "KL-EKM-KOC/RC/2026/000007",
    "service_code": "residence-certificate",
    "local_body": "KL-EKM-KOC",
    "state": "submitted",
    "waits_on": "clerk",
    "state_due_at": "2026-12-01T04:00:00Z",
    "overdue": True,
    "assigned_to": None,
    "version": 1,
    "submitted_at": "2026-11-28T10:00:00Z",
}
COUNTS = {
    "local_body": "KL-EKM-KOC",
    "roles": [
        {"waits_on": "secretary", "pending": 2, "overdue": 0, "unassigned": 2},
        {"waits_on": "clerk", "pending": 5, "overdue": 1, "unassigned": 4},
    ],
}


def _file(**changes) -> dict:
    return {
        **LISTED,
        "definition_hash": "ab" * 32,
        "form": {"full_name": "Anitha Menon", "purpose": "school", "owns_house": True},
        "documents": {
            "id_proof": {"sha256": "cd" * 32, "media_type": "image/png", "size_bytes": 70}
        },
        "allowed_actions": ["verify", "return_for_clarification"],
        "fee_due_paise": 0,
        "clarification": None,
        "timeline": [
            {
                "version": 1,
                "action": "submit",
                "role": "applicant",
                "actor_id": "citizen-1",
                "to_state": "submitted",
                "at": "2026-11-28T10:00:00Z",
            }
        ],
        **changes,
    }


def official(routes, me=CLERK) -> tuple:
    client, fake = portal(
        {
            ("POST", "/auth/token"): (200, TOKENS),
            ("GET", "/me"): (200, me),
            ("GET", "/services"): (200, {"services": [DEFINITION]}),
            ("GET", "/services/residence-certificate"): (200, DEFINITION),
            ("GET", f"/definitions/{'ab' * 32}"): (200, DEFINITION),
            **routes,
        }
    )
    form = {"csrf_token": csrf_of(client.get("/staff/sign-in").data)}
    signed_in = client.post(
        "/staff/sign-in", data={**form, "username": me["username"], "password": "x" * 12}
    )
    assert signed_in.headers["Location"] == "/inbox", "an official lands on the inbox"
    return client, fake


def _sent(fake, method: str, path: str) -> requests.PreparedRequest:
    return next(r for r in reversed(fake.sent) if r.method == method and path in r.path_url)


def test_the_inbox_counts_marks_overdue_in_words_and_filters_by_a_get_form():
    client, fake = official(
        {
            ("GET", "/inbox"): (200, {"files": [LISTED], "next_cursor": "c-2"}),
            ("GET", "/inbox/counts"): (200, COUNTS),
        }
    )
    page = client.get("/inbox?service=residence-certificate&state=submitted&overdue=yes").text
    query = _sent(fake, "GET", "/api/v1/inbox?").path_url
    for sent in ("service=residence-certificate", "state=submitted", "overdue=true", "limit=25"):
        assert sent in query
    assert "KL-EKM-KOC/RC/2026/000007" in page and "Residence certificate" in page
    assert "Awaiting the clerk" in page and "1 December 2026" in page
    assert '<strong class="tag tag--attention">Overdue</strong>' in page, "said, not coloured"
    assert "Nobody yet" in page
    assert f'href="/inbox/files/{FILE_ID}"' in page
    counts = page[page.index('id="counts"') : page.index("</table>")]
    assert counts.index("Clerk") < counts.index("Secretary"), "the caller's role first"
    assert '<td class="table__amount">5</td>' in counts
    assert 'role="region" aria-labelledby="inbox-caption" tabindex="0"' in page
    assert '<option value="submitted" selected>' in page, "states of the chosen service"
    assert "cursor=c-2" in page and "overdue=yes" in page, "later pages keep the filters"
    assert "access-1" not in page


def test_the_inbox_is_for_officials_only():
    client, _ = portal({})
    assert client.get("/inbox").headers["Location"] == "/staff/sign-in"
    citizen = {**CLERK, "username": "+971501234567", "roles": ["citizen"], "local_body": None}
    client, _ = portal({("POST", "/auth/token"): (200, TOKENS), ("GET", "/me"): (200, citizen)})
    form = {"csrf_token": csrf_of(client.get("/staff/sign-in").data)}
    client.post("/staff/sign-in", data={**form, "username": "x", "password": "y"})
    assert client.get("/inbox").status_code == 404
    assert client.get(f"/inbox/files/{FILE_ID}").status_code == 404


def test_a_files_page_shows_answers_documents_timeline_and_only_the_allowed_actions():
    client, _ = official(
        {
            ("GET", f"/files/{FILE_ID}"): (200, _file()),
            ("GET", "/inbox/officials"): (200, {"officials": []}),
        }
    )
    page = client.get(f"/inbox/files/{FILE_ID}").text
    assert "Full name" in page and "Anitha Menon" in page
    assert "School admission" in page and "Yes" in page, "choices and yes/no in words"
    assert f'href="/inbox/files/{FILE_ID}/documents/id_proof"' in page and "Identity proof" in page
    assert "Application submitted" in page and "The applicant" in page
    assert 'name="version" value="1"' in page
    assert 'value="verify">Verify</button>' in page
    assert 'value="return_for_clarification">Return for clarification</button>' in page
    assert "Needed to: Return for clarification." in page
    assert "Take this file yourself" in page, "a clerk may take a clerk's file"
    moved = _file(state="verified", waits_on="secretary", allowed_actions=["approve"])
    client, _ = official({("GET", f"/files/{FILE_ID}"): (200, moved)})
    page = client.get(f"/inbox/files/{FILE_ID}").text
    assert 'name="action"' not in page, "nothing for a clerk to decide"
    assert "Nothing for you to decide now: the file waits on Secretary." in page
    assert "Take this file yourself" not in page


def test_a_decision_sends_the_version_read_and_the_remarks_and_is_taken_once():
    client, fake = official(
        {
            ("GET", f"/files/{FILE_ID}"): (200, _file()),
            ("POST", f"/files/{FILE_ID}/actions"): (
                200,
                _file(state="returned", waits_on="applicant", version=2, allowed_actions=[]),
            ),
        }
    )
    token = csrf_of(client.get(f"/inbox/files/{FILE_ID}").data)
    sent = client.post(
        f"/inbox/files/{FILE_ID}/decision",
        data={
            "csrf_token": token,
            "version": "1",
            "action": "return_for_clarification",
            "remarks": "Attach the ration card too.",
        },
    )
    assert sent.status_code == 303, "POST, then the page: a reload sends nothing again"
    action = _sent(fake, "POST", "/actions")
    assert action.headers["If-Match"] == '"1"'
    assert json.loads(action.body) == {
        "action": "return_for_clarification",
        "remarks": "Attach the ration card too.",
    }
    page = client.get(f"/inbox/files/{FILE_ID}").text
    assert "Your decision has been recorded: Return for clarification." in page


def test_remarks_a_decision_needs_are_asked_for_beside_the_field():
    needs = {"title": "Invalid", "problems": [{"field": "remarks", "message": "say why"}]}
    client, _ = official(
        {
            ("GET", f"/files/{FILE_ID}"): (200, _file()),
            ("POST", f"/files/{FILE_ID}/actions"): (422, needs),
        }
    )
    token = csrf_of(client.get(f"/inbox/files/{FILE_ID}").data)
    page = client.post(
        f"/inbox/files/{FILE_ID}/decision",
        data={"csrf_token": token, "version": "1", "action": "return_for_clarification"},
    )
    assert page.status_code == 422
    assert 'href="#remarks">Write your remarks: this decision needs them.' in page.text
    assert 'id="remarks-error-1"' in page.text and 'aria-invalid="true"' in page.text


def test_a_stale_decision_says_so_shows_the_file_as_it_is_now_and_keeps_the_remarks():
    moved = _file(
        state="verified",
        waits_on="secretary",
        version=2,
        allowed_actions=["approve"],
        timeline=[
            *_file()["timeline"],
            {
                "version": 2,
                "action": "verify",
                "role": "clerk",
                "actor_id": OTHER_CLERK_ID,
                "to_state": "verified",
                "at": "2026-11-29T10:00:00Z",
            },
        ],
    )
    client, fake = official(
        {
            ("GET", f"/files/{FILE_ID}"): (200, moved),
            ("POST", f"/files/{FILE_ID}/actions"): (409, {"title": "Conflict", "status": 409}),
        }
    )
    token = csrf_of(client.get("/account").data)
    form = {"csrf_token": token, "version": "1", "action": "return_for_clarification"}
    page = client.post(
        f"/inbox/files/{FILE_ID}/decision", data={**form, "remarks": "Needs the ration card."}
    )
    assert page.status_code == 409
    assert "Someone acted on this file first. Here it is as it is now." in page.text
    assert "Your decision was not recorded" in page.text
    assert "Awaiting the secretary" in page.text, "the current state"
    assert '<p id="unsent-remarks">Needs the ration card.</p>' in page.text, "remarks kept"
    assert 'name="action"' not in page.text, "no stale buttons: the file waits on another"
    assert [r.method for r in fake.sent].count("POST") == 2, "sign-in and the one refused try"


def test_a_decision_sent_twice_is_recorded_once_and_said_so():
    mine = _file(
        state="returned",
        waits_on="applicant",
        version=2,
        allowed_actions=["resubmit"],
        timeline=[
            *_file()["timeline"],
            {"version": 2, "action": "verify", "role": "clerk", "actor_id": CLERK_ID},
        ],
    )
    client, _ = official(
        {
            ("GET", f"/files/{FILE_ID}"): (200, mine),
            ("POST", f"/files/{FILE_ID}/actions"): (412, {"title": "Precondition failed"}),
        }
    )
    token = csrf_of(client.get("/account").data)
    page = client.post(
        f"/inbox/files/{FILE_ID}/decision",
        data={"csrf_token": token, "version": "1", "action": "verify"},
    )
    assert page.status_code == 200
    assert "Your decision had already been recorded" in page.text
    assert "Someone acted on this file first" not in page.text


def test_a_supervisor_gives_the_file_to_a_named_official_of_its_role():
    colleagues = {
        "officials": [
            {"user_id": CLERK_ID, "username": "clerk.kochi", "display_name": "Clerk, Kochi"},
        ]
    }
    client, fake = official(
        {
            ("GET", f"/files/{FILE_ID}"): (200, _file()),
            ("GET", "/inbox/officials"): (200, colleagues),
            ("POST", f"/files/{FILE_ID}/assignment"): (200, _file(assigned_to=CLERK_ID)),
        },
        me=SECRETARY,
    )
    page = client.get(f"/inbox/files/{FILE_ID}").text
    assert "role=clerk" in _sent(fake, "GET", "/inbox/officials").path_url
    assert f'<option value="{CLERK_ID}">Clerk, Kochi (clerk.kochi)</option>' in page
    assert 'name="action"' not in page, "the secretary does not decide a clerk's step"
    given = client.post(
        f"/inbox/files/{FILE_ID}/assignment",
        data={"csrf_token": csrf_of(page.encode()), "official_id": CLERK_ID},
    )
    assert given.status_code == 303
    assert json.loads(_sent(fake, "POST", "/assignment").body) == {"official_id": CLERK_ID}
    assert "The file has been given to Clerk, Kochi." in client.get(given.headers["Location"]).text


def test_a_document_opens_inline_as_its_own_safe_type_and_nothing_else():
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    client, fake = official(
        {
            ("GET", f"/files/{FILE_ID}/documents/id_proof"): (200, png),
            ("GET", f"/files/{FILE_ID}/documents/evil"): (200, b"<script>alert(1)</script>"),
        }
    )
    # The fake sends bytes as a PDF; the gateway names a document's real type.
    send = fake.send
    types = {"id_proof": "image/png", "evil": "text/html"}

    def typed(request, **kwargs):
        response = send(request, **kwargs)
        code = request.path_url.rsplit("/", 1)[-1]
        if code in types:
            response.headers["Content-Type"] = types[code]
        return response

    fake.send = typed
    shown = client.get(f"/inbox/files/{FILE_ID}/documents/id_proof")
    assert shown.status_code == 200 and shown.data == png
    assert shown.mimetype == "image/png"
    assert shown.headers["Content-Disposition"] == 'inline; filename="id_proof.png"'
    assert shown.headers["X-Content-Type-Options"] == "nosniff"
    assert shown.headers["Content-Security-Policy"] == DOCUMENT_CONTENT_SECURITY_POLICY
    asked = _sent(fake, "GET", "/documents/id_proof")
    assert asked.headers["Authorization"] == "Bearer access-1"
    assert "image/png" in asked.headers["Accept"]
    assert b"access-1" not in shown.data + str(shown.headers).encode()
    assert client.get(f"/inbox/files/{FILE_ID}/documents/evil").status_code == 404
    assert client.get(f"/inbox/files/{FILE_ID}/documents/..%2Fx").status_code == 404
