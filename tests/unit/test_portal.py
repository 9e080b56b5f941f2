"""The portal's own logic with the gateway faked at the HTTP boundary: a
requests transport adapter answers as the gateway would, and records what
the portal sent. No platform, no browser."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from babel.messages.extract import extract_from_dir

from ksmart_portal import create_app, i18n
from ksmart_portal.gateway import Gateway, Reply, forwarded_for
from ksmart_portal.language import choose_language, safe_next
from ksmart_portal.problems import FormField, page_errors
from ksmart_portal.security import CONTENT_SECURITY_POLICY, SESSION_COOKIE
from ksmart_portal.settings import Settings

PORTAL = Path(__file__).resolve().parents[2] / "portal" / "ksmart_portal"
Answer = tuple[int, dict]


class FakeGateway(requests.adapters.BaseAdapter):
    """Answers (method, path) from a table; remembers every request."""

    def __init__(self, routes: dict[tuple[str, str], Answer | Callable[..., Answer]]) -> None:
        super().__init__()
        self.routes = routes
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.sent.append(request)
        path = request.path_url.split("?")[0].removeprefix("/api/v1")
        answer = self.routes.get((request.method, path), (404, {"title": "Not found"}))
        status, body = answer(request) if callable(answer) else answer
        response = requests.Response()
        response.status_code = status
        if isinstance(body, bytes):  # a PDF, as the certificate's endpoint sends it
            response._content = body
            response.headers["Content-Type"] = "application/pdf"
            response.headers["Content-Disposition"] = 'attachment; filename="certificate-1.pdf"'
        elif isinstance(body, str):  # text, as the log's key, public for an hour
            response._content = body.encode()
            response.headers["Content-Type"] = "text/plain; charset=utf-8"
            response.headers["Cache-Control"] = "public, max-age=3600"
        else:
            response._content = json.dumps(body).encode()
            response.headers["Content-Type"] = (
                "application/json" if status < 400 else "application/problem+json"
            )
        response.request = request
        return response

    def close(self) -> None:
        pass


CITIZEN_ME = {
    "user_id": "u-1",
    "username": "+971501234567",
    "roles": ["citizen"],
    "local_body": None,
    "wards": [],
}


def portal(routes) -> tuple:
    fake = FakeGateway({("GET", "/me"): (200, CITIZEN_ME), **routes})

    def session() -> requests.Session:
        made = requests.Session()
        made.mount("http://gateway.invalid", fake)
        return made

    settings = Settings(gateway_url="http://gateway.invalid", secret_key="k" * 64, development=True)
    app = create_app(settings, Gateway(settings.gateway_url, session_factory=session))
    return app.test_client(), fake


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


def error_summary(text: str) -> str:
    """The page's error summary, up to the end of its list."""
    start = text.index('class="error-summary"')
    return text[start : text.index("</ul>", start)]


TOKENS = {
    "access_token": "access-1",
    "token_type": "Bearer",
    "expires_in": 900,
    "refresh_token": "refresh-1",
    "refresh_expires_in": 2592000,
}
CHALLENGE = {"challenge_id": "c-1", "channel": "sms", "sent_to": "+97150*****67", "expires_in": 900}


def test_a_post_without_the_forms_csrf_token_is_refused():
    client, fake = portal({("POST", "/auth/otp"): (202, CHALLENGE)})
    assert client.post("/sign-in", data={"contact": "+971501234567"}).status_code == 400
    token = csrf_of(client.get("/sign-in").data)
    wrong = client.post("/sign-in", data={"contact": "+971501234567", "csrf_token": "x" + token})
    assert wrong.status_code == 400
    assert fake.sent == []
    right = client.post("/sign-in", data={"contact": "+971501234567", "csrf_token": token})
    assert right.status_code == 303


def test_signing_in_keeps_the_tokens_out_of_the_browser_and_sign_out_ends_the_session():
    client, fake = portal(
        {
            ("POST", "/auth/otp"): (202, CHALLENGE),
            ("POST", "/auth/otp/verify"): (200, TOKENS),
            ("POST", "/auth/logout"): (200, {"ended": True}),
        }
    )
    token = csrf_of(client.get("/sign-in").data)
    client.post("/sign-in", data={"contact": "+971 50 123 4567", "csrf_token": token})
    assert json.loads(fake.sent[-1].body) == {"phone": "+971 50 123 4567", "language": "en"}
    page = client.get("/sign-in/code")
    assert b"+97150*****67" in page.data
    signed_in = client.post("/sign-in/code", data={"code": "123 456", "csrf_token": token})
    assert signed_in.status_code == 303
    assert signed_in.headers["Location"] == "/files", "a citizen's first page is their files"
    assert json.loads(fake.sent[-2].body) == {"challenge_id": "c-1", "code": "123456"}
    assert fake.sent[-1].path_url == "/api/v1/me", "who signed in is asked once, kept"
    renewed = csrf_of(client.get("/account").data)
    assert renewed != token, "signing in renews the CSRF token"
    cookie = client.get_cookie(SESSION_COOKIE)
    assert cookie.http_only and cookie.same_site == "Lax"
    for secret in (b"access-1", b"refresh-1"):
        assert secret not in cookie.value.encode()
        assert secret not in client.get("/account").data
    sign_out = client.post("/sign-out", data={"csrf_token": csrf_of(client.get("/account").data)})
    assert sign_out.status_code == 303
    assert fake.sent[-1].path_url == "/api/v1/auth/logout"
    assert fake.sent[-1].headers["Authorization"] == "Bearer access-1"
    assert client.get("/account").status_code == 303


def test_staff_sign_in_with_a_password_and_a_wrong_one_says_so_beside_the_field():
    clerk = {
        **CITIZEN_ME,
        "username": "clerk.kochi",
        "roles": ["clerk"],
        "local_body": "KL-EKM-KOC",
    }

    def token(request):
        sent = json.loads(request.body)
        if sent["password"] != "right":
            return 401, {"title": "Unauthenticated", "detail": "bad username or password"}
        return 200, TOKENS

    client, fake = portal({("POST", "/auth/token"): token, ("GET", "/me"): (200, clerk)})
    form = {"csrf_token": csrf_of(client.get("/staff/sign-in").data)}
    empty = client.post("/staff/sign-in", data=form)
    assert empty.status_code == 400 and fake.sent == []
    assert empty.data.count(b'class="error-message"') == 2, "both fields named at once"
    wrong = client.post("/staff/sign-in", data={**form, "username": "clerk.kochi", "password": "x"})
    assert wrong.status_code == 400
    assert b'aria-describedby="password-error-1"' in wrong.data
    assert b'value="clerk.kochi"' in wrong.data and b'value="x"' not in wrong.data
    right = client.post(
        "/staff/sign-in", data={**form, "username": "clerk.kochi", "password": "right"}
    )
    assert right.status_code == 303
    account = client.get("/account").data.decode()
    assert "clerk.kochi" in account
    assert 'href="/files"' not in account, "a clerk has no files of their own"


def test_an_expired_access_token_is_refreshed_on_the_server_side():
    client, fake = portal(
        {
            ("POST", "/auth/otp"): (202, CHALLENGE),
            ("POST", "/auth/otp/verify"): (200, {**TOKENS, "expires_in": 0}),
            ("POST", "/auth/refresh"): (200, {**TOKENS, "access_token": "access-2"}),
            ("POST", "/auth/logout"): (200, {"ended": True}),
        }
    )
    token = csrf_of(client.get("/sign-in").data)
    client.post("/sign-in", data={"contact": "someone@example.org", "csrf_token": token})
    assert json.loads(fake.sent[-1].body)["email"] == "someone@example.org"
    client.post("/sign-in/code", data={"code": "123456", "csrf_token": token})
    page = client.get("/account")
    assert page.status_code == 200
    assert json.loads(fake.sent[-1].body) == {"refresh_token": "refresh-1"}
    client.post("/sign-out", data={"csrf_token": csrf_of(page.data)})
    assert fake.sent[-1].headers["Authorization"] == "Bearer access-2"


def test_the_language_comes_from_the_cookie_then_the_browser_then_english():
    assert choose_language("ml", "en-GB,en;q=0.9") == "ml"
    assert choose_language(None, "en-GB;q=0.5, ml-IN;q=0.8") == "ml"
    assert choose_language("fr", "fr-FR, de") == "en"
    assert choose_language(None, None) == "en"


def test_the_language_switch_is_remembered_and_goes_back_to_this_site_only():
    client, fake = portal({("GET", "/categories"): (200, {"categories": []})})
    switched = client.get("/language/ml?next=/certificates")
    assert switched.headers["Location"] == "/certificates"
    assert client.get_cookie("lang").value == "ml"
    page = client.get("/certificates")
    assert b'<html lang="ml">' in page.data
    assert safe_next("//elsewhere.example/") == "/"
    assert safe_next("/\\elsewhere.example") == "/"
    assert safe_next("https://elsewhere.example/") == "/"


def test_every_page_forbids_inline_script_and_style():
    client, _ = portal({})
    response = client.get("/")
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert response.headers["Cache-Control"] == "no-store"


def test_problems_go_beside_their_fields_and_into_the_summary_in_the_pages_language():
    client, fake = portal(
        {
            ("POST", "/auth/otp"): (
                422,
                {
                    "title": "The request has problems",
                    "status": 422,
                    "problems": [{"field": "phone", "message": "a phone number ..."}],
                },
            )
        }
    )
    client.get("/language/ml")
    token = csrf_of(client.get("/sign-in").data)
    page = client.post("/sign-in", data={"contact": "12", "csrf_token": token})
    assert fake.sent[-1].headers["Accept-Language"] == "ml"
    text = page.data.decode()
    ml = i18n.load_catalogues()["ml"]
    expected = ml.gettext(
        "This is not a mobile number we can send to: start with + and the country code."
    )
    assert page.status_code == 400
    assert 'class="error-summary"' in text and '<a href="#contact">' + expected in text
    assert 'id="contact-error-1"' in text and 'aria-invalid="true"' in text
    hint = ml.gettext(
        "A mobile number with its country code, like +971501234567, or an email address."
    )
    assert text.count(hint) == 1, "the error says what was wrong, not the hint again"


def test_a_problem_no_form_field_owns_and_a_refusal_by_status_still_show():
    reply = Reply(422, {"problems": [{"field": "elsewhere", "message": "as the API says"}]})
    app, _ = portal({})
    with app.application.test_request_context():
        from flask import g

        g.translations = i18n.load_catalogues()["en"]
        errors = page_errors(reply, {"q": FormField("q")})
        assert [(e.field, e.message) for e in errors.errors] == [(None, "as the API says")]
        limited = page_errors(Reply(429, {}, {"Retry-After": "600"}))
        assert limited.errors[0].message == "Too many tries. Wait 10 minutes and try again."


def test_every_text_in_the_templates_and_code_is_in_both_catalogues():
    extracted = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for message in extract_from_dir(
            str(PORTAL),
            method_map=[("**.py", "python"), ("**/templates/**.html", "jinja2")],
            keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None},
        )
    }
    for language in ("en", "ml"):
        catalogue = i18n.read_catalogue(language)
        known = {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue if m.id}
        assert extracted - known == set(), language
        if language == "ml":
            untranslated = [m.id for m in catalogue if m.id and not all(_strings(m.string))]
            assert untranslated == []


def _strings(value) -> list[str]:
    return list(value) if isinstance(value, tuple) else [value]


@pytest.mark.parametrize("template", sorted((PORTAL / "templates").glob("*.html")))
def test_no_template_holds_text_outside_the_catalogues(template):
    """Strip tags, Jinja blocks and expressions: no word may be left."""
    text = template.read_text()
    text = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", text, flags=re.S)
    text = re.sub(r"<[^>]*>", " ", text, flags=re.S)
    assert re.findall(r"[^\W\d_]{2,}", text) == [], template.name


# -- a citizen's files, a file's page, its certificate, tracking --------------

FILE_ID = "3f6c1a52-8a39-4c1e-9d3e-2b7f0f0b6a11"
NUMBER = "KL-EKM-KOC/BR/2026/000123"
SERVICE = {
    "code": "birth-certificate",
    "name": {"en": "Birth registration and certificate", "ml": "ജനന രജിസ്ട്രേഷൻ"},
    "certificate": {"title": {"en": "Birth certificate"}},
    "workflow": {
        "states": {
            "submitted": {"label": {"en": "Submitted, awaiting the clerk", "ml": "സമർപ്പിച്ചു"}},
            "clarification_requested": {"label": {"en": "Returned to the applicant"}},
            "approved": {"label": {"en": "Approved"}, "final": True, "outcome": "granted"},
        },
        "actions": [{"name": "approve", "label": {"en": "Approve", "ml": "അംഗീകരിക്കുക"}}],
    },
}
LISTED = {
    "file_id": FILE_ID,
    "file_number": NUMBER,
    "service_code": "birth-certificate",
    "local_body": "KL-EKM-KOC",
    "state": "clarification_requested",
    "waits_on": "applicant",
    "needs_applicant": True,
    "state_due_at": "2026-12-20T04:00:00Z",
    "submitted_at": "2026-12-05T10:00:00Z",
    "updated_at": "2026-12-06T10:00:00Z",
    "version": 3,
}


def _file(**changes) -> dict:
    return {
        "file_id": FILE_ID,
        "file_number": NUMBER,
        "service_code": "birth-certificate",
        "local_body": "KL-EKM-KOC",
        "state": "submitted",
        "waits_on": "clerk",
        "version": 1,
        "submitted_at": "2026-12-05T10:00:00Z",
        "updated_at": "2026-12-05T10:00:00Z",
        "state_due_at": "2026-12-07T10:00:00Z",
        "allowed_actions": [],
        "fee_due_paise": 0,
        "clarification": None,
        "certificate": None,
        "timeline": [
            {
                "version": 1,
                "action": "submit",
                "role": "applicant",
                "remarks": None,
                "to_state": "submitted",
                "at": "2026-12-05T10:00:00Z",
            }
        ],
        **changes,
    }


def signed_in(routes) -> tuple:
    client, fake = portal(
        {
            ("POST", "/auth/otp"): (202, CHALLENGE),
            ("POST", "/auth/otp/verify"): (200, TOKENS),
            ("GET", "/services/birth-certificate"): (200, SERVICE),
            **routes,
        }
    )
    token = csrf_of(client.get("/sign-in").data)
    client.post("/sign-in", data={"contact": "+971501234567", "csrf_token": token})
    client.post("/sign-in/code", data={"code": "123456", "csrf_token": token})
    return client, fake


def test_my_files_lists_each_in_plain_words_and_needs_a_session():
    assert portal({})[0].get("/files").headers["Location"] == "/sign-in"
    client, fake = signed_in({("GET", "/files"): (200, {"files": [LISTED], "next_cursor": "abc"})})
    page = client.get("/files").data.decode()
    listing = next(sent for sent in fake.sent if sent.path_url.startswith("/api/v1/files"))
    assert listing.headers["Authorization"] == "Bearer access-1"
    assert "limit=20" in listing.path_url
    assert "Birth registration and certificate" in page
    assert "Returned to the applicant" in page and NUMBER in page
    assert "The office has asked you something. Open the file to answer." in page
    assert "Answer by" in page and "20 December 2026" in page
    assert f'href="/files/{FILE_ID}"' in page
    assert 'href="/files?cursor=abc"' in page
    assert "access-1" not in page
    client.get("/language/ml")
    assert "സമർപ്പിച്ചു" not in client.get("/files").data.decode()  # its own state's words
    assert "ജനന രജിസ്ട്രേഷൻ" in client.get("/files").data.decode()


def test_a_files_page_shows_where_it_is_what_happens_next_and_its_timeline():
    client, _ = signed_in({("GET", f"/files/{FILE_ID}"): (200, _file())})
    page = client.get(f"/files/{FILE_ID}").data.decode()
    assert "Submitted, awaiting the clerk" in page and "Clerk" in page
    assert "The office is working on it." in page
    assert "Application submitted" in page and "You" in page
    assert "Download your certificate" not in page
    assert 'name="remarks"' not in page, "nothing to answer"


def test_a_granted_file_offers_its_certificate_streamed_without_the_token():
    pdf = b"%PDF-1.7\n...certificate...\n%%EOF\n"
    granted = _file(state="approved", waits_on=None, certificate={"number": "X"})
    client, fake = signed_in(
        {
            ("GET", f"/files/{FILE_ID}"): (200, granted),
            ("GET", f"/files/{FILE_ID}/certificate"): (200, pdf),
        }
    )
    page = client.get(f"/files/{FILE_ID}").data.decode()
    assert "Download your certificate" in page
    assert f'href="/files/{FILE_ID}/certificate"' in page
    download = client.get(f"/files/{FILE_ID}/certificate")
    assert download.status_code == 200 and download.data == pdf
    assert download.mimetype == "application/pdf"
    assert download.headers["Content-Disposition"] == 'attachment; filename="certificate-1.pdf"'
    assert fake.sent[-1].headers["Authorization"] == "Bearer access-1"
    exposed = download.data + str(download.headers).encode() + page.encode()
    assert b"access-1" not in exposed and b"refresh-1" not in exposed
    assert "access-1" not in download.headers.get("Location", "")


def test_a_certificate_not_issued_or_not_a_pdf_is_not_found_and_needs_a_session():
    client, _ = portal({})
    assert client.get(f"/files/{FILE_ID}/certificate").headers["Location"] == "/sign-in"
    client, _ = signed_in({("GET", f"/files/{FILE_ID}/certificate"): (404, {"title": "no"})})
    assert client.get(f"/files/{FILE_ID}/certificate").status_code == 404
    client, _ = signed_in({("GET", f"/files/{FILE_ID}/certificate"): (200, {"not": "a pdf"})})
    assert client.get(f"/files/{FILE_ID}/certificate").status_code == 404


ASKED = _file(
    state="clarification_requested",
    waits_on="applicant",
    version=3,
    allowed_actions=["resubmit"],
    clarification={"asked": "Attach the hospital's discharge summary.", "role": "clerk"},
)


def test_answering_the_office_sends_resubmit_with_the_version_read():
    client, fake = signed_in(
        {
            ("GET", f"/files/{FILE_ID}"): (200, ASKED),
            ("POST", f"/files/{FILE_ID}/actions"): (200, _file(version=4)),
        }
    )
    page = client.get(f"/files/{FILE_ID}").data.decode()
    assert "Attach the hospital&#39;s discharge summary." in page
    assert 'name="version" value="3"' in page
    empty = client.post(
        f"/files/{FILE_ID}/answer", data={"version": "3", "csrf_token": csrf_of(page.encode())}
    )
    assert empty.status_code == 400
    assert (
        'href="#remarks"' in empty.data.decode() and 'id="remarks-error-1"' in empty.data.decode()
    )
    sent = client.post(
        f"/files/{FILE_ID}/answer",
        data={"version": "3", "remarks": "Attached.", "csrf_token": csrf_of(page.encode())},
    )
    assert sent.status_code == 303
    action = next(r for r in reversed(fake.sent) if r.method == "POST")
    assert action.headers["If-Match"] == '"3"'
    assert json.loads(action.body) == {"action": "resubmit", "remarks": "Attached."}
    assert "Your answer has been sent to the office." in client.get(f"/files/{FILE_ID}").text


def test_a_file_changed_meanwhile_says_so_shows_it_as_it_is_and_keeps_the_answer():
    moved = {**ASKED, "state": "submitted", "waits_on": "clerk", "allowed_actions": []}
    client, _ = signed_in(
        {
            ("GET", f"/files/{FILE_ID}"): (200, moved),
            ("POST", f"/files/{FILE_ID}/actions"): (409, {"title": "Conflict", "status": 409}),
        }
    )
    token = csrf_of(client.get("/account").data)
    page = client.post(
        f"/files/{FILE_ID}/answer",
        data={"version": "3", "remarks": "Attached.", "csrf_token": token},
    )
    text = page.data.decode()
    assert page.status_code == 409
    assert "This file changed while you were answering" in text
    assert "Submitted, awaiting the clerk" in text


def test_a_genuine_certificate_says_what_it_is_who_issued_it_and_until_when():
    verdict = {
        "found": True,
        "valid": True,
        "problems": [],
        "certificate": {
            "certificate_number": NUMBER,
            "title": {"en": "Birth certificate", "ml": "ജനന സർട്ടിഫിക്കറ്റ്"},
            "local_body": "KL-EKM-KOC",
            "issued_at": "2026-12-06T10:00:00Z",
            "valid_until": None,
        },
    }
    client, fake = portal(
        {
            ("GET", f"/certificates/{NUMBER}"): (200, verdict),
            ("GET", "/local-bodies/KL-EKM-KOC"): (200, {"name": {"en": "Kochi Corporation"}}),
        }
    )
    page = client.get("/certificates", query_string={"number": NUMBER}).data.decode()
    for shown in ("This certificate is genuine and valid", NUMBER, "Birth certificate"):
        assert shown in page
    assert "Kochi Corporation" in page and "6 December 2026" in page
    assert "No end date" in page


def test_tracking_a_file_by_its_number_says_where_it_is_without_signing_in():
    tracked = {
        "file_number": NUMBER,
        "service_code": "birth-certificate",
        "local_body": "KL-EKM-KOC",
        "state": "submitted",
        "waits_on": "clerk",
        "state_due_at": "2026-12-07T10:00:00Z",
        "overdue": True,
        "updated_at": "2026-12-05T10:00:00Z",
    }
    client, fake = portal(
        {
            ("GET", f"/track/{NUMBER}"): (200, tracked),
            ("GET", "/services/birth-certificate"): (200, SERVICE),
            ("GET", "/local-bodies/KL-EKM-KOC"): (200, {"name": {"en": "Kochi Corporation"}}),
        }
    )
    assert client.get("/track").status_code == 200
    page = client.get("/track", query_string={"number": " kl-ekm-koc/br/2026/000123 "})
    text = page.data.decode()
    assert page.status_code == 200
    assert "Kochi Corporation" in text and "Submitted, awaiting the clerk" in text
    assert "Clerk" in text and "Overdue" in text and "7 December 2026" in text
    assert all("Authorization" not in sent.headers for sent in fake.sent)
    unknown = client.get("/track", query_string={"number": "KL-EKM-KOC/BR/2026/999999"})
    assert unknown.status_code == 400
    assert "No file has this number. Check it and try again." in unknown.data.decode()
    shapeless = client.get("/track", query_string={"number": "123"})
    assert 'id="number-error-1"' in shapeless.data.decode()
    assert len(fake.sent) == 4, "a number of the wrong shape is answered without a call"


# -- the citizen's address, passed on ------------------------------------------


@pytest.mark.parametrize(
    ("received", "peer", "sent"),
    [
        (None, "198.51.100.2", "198.51.100.2"),
        ("203.0.113.7", "10.244.1.9", "203.0.113.7, 10.244.1.9"),
        ("203.0.113.7", None, "203.0.113.7"),
        (None, None, None),
    ],
)
def test_the_address_the_portal_saw_is_appended_to_what_it_was_given(received, peer, sent):
    assert forwarded_for(received, peer) == sent


def test_every_gateway_call_carries_the_citizens_address_not_only_the_portals():
    """The gateway counts sign-in codes per caller: the caller must be the
    citizen (as the ingress saw them), not the portal replica."""
    client, fake = portal({("GET", "/categories"): (200, {"categories": []})})
    client.get(
        "/services",
        headers={"X-Forwarded-For": "203.0.113.7"},
        environ_base={"REMOTE_ADDR": "10.244.1.9"},
    )
    assert fake.sent, "the page asked the gateway nothing"
    assert {request.headers["X-Forwarded-For"] for request in fake.sent} == {
        "203.0.113.7, 10.244.1.9"
    }


# -- applying for a service ----------------------------------------------------

DEFINITION = json.loads(
    (
        PORTAL.parents[1]
        / "services/catalogue/ksmart_catalogue/definitions/birth-certificate/v1.json"
    ).read_text()
)
DEFINITION = {
    **DEFINITION,
    "fields": [
        *DEFINITION["fields"],
        {"name": "copies", "type": "integer", "required": False, "label": {"en": "Copies"}},
    ],
}
OFFICES = {
    "local_bodies": [
        {"code": "KL-EKM-KOC", "type": "corporation", "name": {"en": "Kochi Corporation"}},
        {"code": "KL-EKM-BLK", "type": "block_panchayat", "name": {"en": "Vypeen Block"}},
    ]
}
PDF = b"%PDF-1.4\n%%EOF\n"


def applying(routes=None) -> tuple:
    return signed_in(
        {
            ("GET", "/services/birth-certificate"): (200, DEFINITION),
            ("GET", "/local-bodies"): (200, OFFICES),
            **(routes or {}),
        }
    )


def post_application(client, answers: dict, **arguments):
    """The form, sent with its CSRF token and the Kochi corporation chosen."""
    token = csrf_of(client.get("/services/birth-certificate/apply").data)
    data = {"csrf_token": token, "local_body": "KL-EKM-KOC", **answers}
    return client.post("/services/birth-certificate/apply", data=data, **arguments)


def test_the_form_is_built_from_the_definition_with_the_right_input_for_each_type():
    client, _ = applying()
    page = client.get("/services/birth-certificate/apply")
    assert page.status_code == 200
    text = page.data.decode()
    expected = (
        'enctype="multipart/form-data"',
        'name="csrf_token"',
        # the right input for each type
        'type="radio" id="field-sex" name="field-sex" value="male"',
        'id="field-date_of_birth" name="field-date_of_birth" value="" type="date"',
        'name="field-phone" value="" type="tel" autocomplete="tel"',
        'name="field-email" value="" type="email" autocomplete="email"',
        'name="field-copies" value="" type="text" inputmode="numeric"',
        'name="field-applicant_abroad" value="yes"',
        'type="file" id="document-parent_identity_proof"',
        "Name of the child (optional)",
        # conditions: a plain hint for everyone, data for the little script
        "Answer this only if “Place of birth” is Hospital or health institution.",
        'data-condition-field="field-place_of_birth" data-condition-values="hospital"',
        'data-condition-field="field-applicant_abroad" data-condition-values="yes"',
        "Attach this only if “I am applying from outside India” is Yes.",
        # only the offices that offer the service, from the directory
        "Kochi Corporation",
    )
    assert [snippet for snippet in expected if snippet not in text] == []
    assert "Mother&#39;s name (optional)" not in text and "Vypeen Block" not in text
    assert "<script" in text and "conditions.js" in text and "<script>" not in text


def test_applying_needs_a_session_and_comes_back_after_signing_in():
    client, _ = portal(
        {
            ("POST", "/auth/otp"): (202, CHALLENGE),
            ("POST", "/auth/otp/verify"): (200, TOKENS),
        }
    )
    page = client.get("/services/birth-certificate/apply")
    assert page.status_code == 303 and page.headers["Location"] == "/sign-in"
    token = csrf_of(client.get("/sign-in").data)
    client.post("/sign-in", data={"contact": "+971501234567", "csrf_token": token})
    back = client.post("/sign-in/code", data={"code": "123456", "csrf_token": token})
    assert back.headers["Location"] == "/services/birth-certificate/apply"


def test_answers_are_typed_conditions_settle_what_is_sent_and_uploads_carry_the_token():
    uploaded = []

    def upload(request):
        uploaded.append(request)
        return 201, {
            "sha256": hashlib.sha256(request.body).hexdigest(),
            "media_type": "application/pdf",
            "size_bytes": len(request.body),
        }

    client, fake = applying(
        {
            ("POST", "/documents"): upload,
            ("POST", "/files"): (201, {"file_id": FILE_ID, "file_number": NUMBER}),
            ("GET", f"/files/{FILE_ID}"): (200, _file()),
        }
    )
    sent = post_application(
        client,
        {
            "field-sex": "female",
            "field-place_of_birth": "home",
            "field-hospital_name": "typed before changing my mind",
            "field-applicant_abroad": "no",
            "field-copies": "2",
            "field-child_name": "  ",
            "document-parent_identity_proof": (io.BytesIO(PDF), "aadhaar.pdf"),
            "document-birth_declaration": (io.BytesIO(PDF + b"2"), "declaration.pdf"),
            "document-hospital_birth_report": (io.BytesIO(PDF + b"3"), "not-needed.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert sent.status_code == 303 and sent.headers["Location"] == f"/applied/{FILE_ID}"
    assert [r.headers["Authorization"] for r in uploaded] == ["Bearer access-1"] * 2
    assert {r.headers["Content-Type"] for r in uploaded} == {"application/octet-stream"}
    assert sorted(r.path_url for r in uploaded) == [
        "/api/v1/documents?filename=aadhaar.pdf",
        "/api/v1/documents?filename=declaration.pdf",
    ]
    application = json.loads(next(r for r in fake.sent if r.path_url == "/api/v1/files").body)
    assert application == {
        "service_code": "birth-certificate",
        "local_body": "KL-EKM-KOC",
        "form": {"sex": "female", "place_of_birth": "home", "applicant_abroad": False, "copies": 2},
        "documents": {
            "parent_identity_proof": hashlib.sha256(PDF).hexdigest(),
            "birth_declaration": hashlib.sha256(PDF + b"2").hexdigest(),
        },
    }
    confirmation = client.get(sent.headers["Location"]).data.decode()
    assert NUMBER in confirmation and f'href="/files/{FILE_ID}"' in confirmation
    assert 'href="/files"' in confirmation


def test_every_problem_is_shown_beside_its_field_and_the_answers_and_uploads_are_kept():
    problems = {
        "type": "about:blank",
        "title": "The application has problems",
        "status": 422,
        "problems": [
            {
                "field": "documents.parent_identity_proof",
                "code": "document_missing",
                "message": "Identity document: upload it",
            },
            {
                "field": "form.date_of_birth",
                "code": "required",
                "message": "Date of birth: required",
            },
            {"field": "form.copies", "code": "not_integer", "message": "Copies: a whole number"},
            {"field": "form.sex", "code": "required", "message": "Sex of the child: required"},
            {"field": "form", "code": "x", "message": "the form as a whole"},
        ],
    }
    sha = hashlib.sha256(PDF).hexdigest()
    client, fake = applying({("POST", "/files"): (422, problems)})
    client.get("/language/ml")
    page = post_application(
        client,
        {
            "field-mother_name": "Asha <Menon>",
            "field-copies": "two",
            "field-place_of_birth": "home",
            "uploaded-birth_declaration": sha,
            "uploaded-name-birth_declaration": "declaration.pdf",
        },
    )
    assert page.status_code == 400
    filed = next(r for r in fake.sent if r.path_url == "/api/v1/files")
    assert filed.headers["Accept-Language"] == "ml"
    body = json.loads(filed.body)
    assert body["form"]["copies"] == "two" and body["documents"] == {"birth_declaration": sha}
    text = page.data.decode()
    summary = error_summary(text)
    # in the page's order, each linking to its field
    assert re.findall(r'<a href="#([\w-]+)">', summary) == [
        "field-sex",
        "field-date_of_birth",
        "field-copies",
        "document-parent_identity_proof",
    ]
    assert "the form as a whole" in summary
    for field in ("field-sex", "field-date_of_birth", "field-copies"):
        assert f'id="{field}-error-1"' in text
    assert 'id="document-parent_identity_proof-error-1"' in text
    assert 'value="Asha &lt;Menon&gt;"' in text and 'value="two"' in text
    assert 'value="home" checked' in text
    assert f'name="uploaded-birth_declaration" value="{sha}"' in text
    assert "declaration.pdf" in text and "access-1" not in text


def test_no_office_chosen_is_a_problem_of_the_page_and_nothing_is_filed():
    client, fake = applying()
    page = post_application(client, {"local_body": ""})
    assert page.status_code == 400
    assert '<a href="#local_body">Choose the local body you are applying to.' in page.data.decode()
    assert all(r.path_url != "/api/v1/files" for r in fake.sent)


def test_a_refused_upload_goes_beside_its_document():
    client, _ = applying(
        {
            ("POST", "/documents"): (
                422,
                {"status": 422, "problems": [{"field": "body", "message": "not a PDF"}]},
            ),
            ("POST", "/files"): (
                422,
                {
                    "status": 422,
                    "problems": [
                        {"field": "documents.parent_identity_proof", "message": "missing"}
                    ],
                },
            ),
        }
    )
    page = post_application(
        client,
        {
            "document-parent_identity_proof": (io.BytesIO(b"MZ"), "virus.exe"),
        },
        content_type="multipart/form-data",
    )
    text = page.data.decode()
    assert '<a href="#document-parent_identity_proof">not a PDF</a>' in text
    assert ">missing<" not in text


def test_a_body_over_the_limit_is_refused_before_it_is_read():
    fake = FakeGateway({})
    settings = Settings(
        gateway_url="http://gateway.invalid",
        secret_key="k" * 64,
        development=True,
        max_request_bytes=1024 * 1024,
    )
    app = create_app(settings, Gateway(settings.gateway_url))
    page = app.test_client().post(
        "/services/birth-certificate/apply",
        data=b"x" * (2 * 1024 * 1024),
        content_type="application/octet-stream",
    )
    assert page.status_code == 413
    assert "together they may be at most 1 MB" in page.data.decode()
    assert fake.sent == []
