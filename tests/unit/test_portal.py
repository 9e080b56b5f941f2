"""The portal's own logic with the gateway faked at the HTTP boundary: a
requests transport adapter answers as the gateway would, and records what
the portal sent. No platform, no browser."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from ksmart_portal import create_app, i18n
from ksmart_portal.gateway import Gateway, Reply
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
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = (
            "application/json" if status < 400 else "application/problem+json"
        )
        response.request = request
        return response

    def close(self) -> None:
        pass


def portal(routes) -> tuple:
    fake = FakeGateway(routes)

    def session() -> requests.Session:
        made = requests.Session()
        made.mount("http://gateway.invalid", fake)
        return made

    settings = Settings(gateway_url="http://gateway.invalid", secret_key="k" * 64, development=True)
    app = create_app(settings, Gateway(settings.gateway_url, session_factory=session))
    return app.test_client(), fake


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


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
    assert json.loads(fake.sent[-1].body) == {"challenge_id": "c-1", "code": "123456"}
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
    expected = i18n.load_catalogues()["ml"].gettext(
        "A mobile number with its country code, like +971501234567, or an email address."
    )
    assert page.status_code == 400
    assert 'class="error-summary"' in text and '<a href="#contact">' + expected in text
    assert 'id="contact-error-1"' in text and 'aria-invalid="true"' in text


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
        with i18n.catalogue_path(language).open("rb") as source:
            catalogue = read_po(source)
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
