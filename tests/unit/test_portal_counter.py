"""The counter's pages with the gateway faked at the HTTP boundary: an
Akshaya operator or a clerk starts a filing (the citizen's consent asked
for by phone or email), fills the service's own form with the scans and
the code the citizen reads out (a wrong code named with every other
problem at once), and prints the acknowledgement."""

from __future__ import annotations

import hashlib
import io
import json
import re

import pytest

from ksmart_portal import i18n
from ksmart_portal.files_text import role_name
from tests.unit.test_portal import (
    DEFINITION,
    OFFICES,
    PDF,
    TOKENS,
    _file,
    csrf_of,
    error_summary,
    portal,
)

FILE_ID = "7d3e2a10-5b4c-4d3e-8f9a-0b1c2d3e4f5a"
NUMBER = "KL-EKM-KOC/BR/2026/000042"
OPERATOR_ID = "a0a0a0a0-1111-4c1e-9d3e-2b7f0f0b6a11"
OPERATOR = {
    "user_id": OPERATOR_ID,
    "username": "akshaya.edappally",
    "roles": ["akshaya_operator"],
    "local_body": None,
    "wards": [],
}
CLERK = {
    **OPERATOR,
    "user_id": "c1e4c1e4-2222-4c1e-9d3e-2b7f0f0b6a11",
    "username": "clerk.kochi",
    "roles": ["clerk"],
    "local_body": "KL-EKM-KOC",
}
CONSENT = {
    "consent_id": "consent-secret-id-1",
    "channel": "sms",
    "sent_to": "+91984*****45",
    "expires_in": 900,
    "expires_at": "2026-12-05T10:15:00Z",
}
KOCHI = {"code": "KL-EKM-KOC", "type": "corporation", "name": {"en": "Kochi Corporation"}}
FILED_BY = {
    "actor_id": OPERATOR_ID,
    "role": "akshaya_operator",
    "office": {"local_body": None, "name": {"en": "Akshaya centre, Edappally"}},
    "consent_id": CONSENT["consent_id"],
}


def _filed(filed_by=FILED_BY) -> dict:
    timeline = [{**_file()["timeline"][0], "role": filed_by["role"]}]
    return _file(
        file_id=FILE_ID, file_number=NUMBER, filed_by=filed_by, timeline=timeline, version=1
    ) | {"file_due_at": "2026-12-12T10:00:00Z"}


def counter(routes=None, me=OPERATOR) -> tuple:
    """A counter's browser, signed in, with the form's calls answered."""
    client, fake = portal(
        {
            ("POST", "/auth/token"): (200, TOKENS),
            ("GET", "/me"): (200, me),
            ("GET", "/services"): (200, {"services": [DEFINITION]}),
            ("GET", "/services/birth-certificate"): (200, DEFINITION),
            ("GET", "/local-bodies"): (200, OFFICES),
            ("GET", "/local-bodies/KL-EKM-KOC"): (200, KOCHI),
            ("POST", "/counter/consents"): (202, CONSENT),
            **(routes or {}),
        }
    )
    form = {"csrf_token": csrf_of(client.get("/staff/sign-in").data)}
    client.post("/staff/sign-in", data={**form, "username": me["username"], "password": "x" * 12})
    return client, fake


def _start(client, contact="+919847012345", language="ml"):
    token = csrf_of(client.get("/counter").data)
    data = {"csrf_token": token, "service": "birth-certificate", "contact": contact}
    return client.post("/counter", data={**data, "citizen_language": language})


def _post_form(client, answers: dict, **arguments):
    token = csrf_of(client.get("/counter/file").data)
    return client.post("/counter/file", data={"csrf_token": token, **answers}, **arguments)


def _sent(fake, method: str, path: str):
    return [r for r in fake.sent if r.method == method and r.path_url.startswith(f"/api/v1{path}")]


def test_an_akshaya_operator_lands_on_the_counter_a_clerk_on_the_inbox_others_get_nothing():
    form = {"username": "akshaya.edappally", "password": "x" * 12}
    client, _ = portal({("POST", "/auth/token"): (200, TOKENS), ("GET", "/me"): (200, OPERATOR)})
    assert client.get("/counter").headers["Location"] == "/staff/sign-in", "sign in first"
    token = csrf_of(client.get("/staff/sign-in").data)
    landed = client.post("/staff/sign-in", data={**form, "csrf_token": token})
    assert landed.headers["Location"] == "/counter"
    clerk, _ = portal({("POST", "/auth/token"): (200, TOKENS), ("GET", "/me"): (200, CLERK)})
    token = csrf_of(clerk.get("/staff/sign-in").data)
    landed = clerk.post("/staff/sign-in", data={**form, "csrf_token": token})
    assert landed.headers["Location"] == "/inbox", "a clerk's inbox comes first"
    header = clerk.get("/account").data.decode()
    assert 'href="/counter">File for a citizen' in header and 'href="/inbox"' in header
    citizen, _ = portal({("POST", "/auth/token"): (200, TOKENS)})
    token = csrf_of(citizen.get("/staff/sign-in").data)
    citizen.post("/staff/sign-in", data={**form, "csrf_token": token})
    assert citizen.get("/counter").status_code == 404
    assert citizen.get("/counter/file").status_code == 404


def test_starting_asks_the_citizens_consent_and_the_form_says_where_the_code_went():
    client, fake = counter()
    start = client.get("/counter?q=birth").data.decode()
    assert 'value="birth-certificate"' in start and "Birth" in start
    assert _sent(fake, "GET", "/services")[-1].path_url == "/api/v1/services?q=birth"
    sent = _start(client)
    assert sent.status_code == 303 and sent.headers["Location"] == "/counter/file"
    asked = _sent(fake, "POST", "/counter/consents")[-1]
    assert json.loads(asked.body) == {"phone": "+919847012345", "language": "ml"}
    assert asked.headers["Authorization"] == "Bearer access-1"
    page = client.get("/counter/file").data.decode()
    assert "+91984*****45" in page and "only if they asked you to file" in page
    assert 'action="/counter/file"' in page and 'enctype="multipart/form-data"' in page
    assert '<select class="select" id="local_body"' in page, "an operator chooses the office"
    assert "Local body the citizen is applying to" in page
    assert 'id="consent_code"' in page and 'type="file" id="document-parent_identity_proof"' in page
    assert CONSENT["consent_id"] not in page, "the consent stays in the session"
    assert "Send application" not in page and "File the application" in page


def test_an_email_consent_and_every_problem_of_the_start_at_once():
    client, fake = counter()
    token = csrf_of(client.get("/counter").data)
    empty = client.post("/counter", data={"csrf_token": token})
    assert empty.status_code == 400 and _sent(fake, "POST", "/counter/consents") == []
    text = empty.data.decode()
    assert '<a href="#service">' in text and '<a href="#contact">' in text
    refused = {
        "status": 422,
        "problems": [{"field": "phone", "message": "not a phone number"}],
    }
    client, fake = counter({("POST", "/counter/consents"): (422, refused)})
    page = _start(client, contact="12345").data.decode()
    assert '<a href="#contact">This is not a mobile number we can send to' in page
    assert 'value="birth-certificate" selected' in page and 'value="12345"' in page
    client, fake = counter({("POST", "/counter/consents"): (202, {**CONSENT, "channel": "email"})})
    _start(client, contact="ravi@example.org", language="en")
    asked = json.loads(_sent(fake, "POST", "/counter/consents")[-1].body)
    assert asked == {"email": "ravi@example.org", "language": "en"}
    assert "We have emailed the citizen" in client.get("/counter/file").data.decode()


def test_without_a_consent_in_progress_the_form_goes_back_to_the_start():
    client, _ = counter()
    assert client.get("/counter/file").headers["Location"] == "/counter"


def test_a_wrong_code_is_named_with_every_form_problem_and_the_scans_are_kept():
    problems = {
        "status": 422,
        "problems": [
            {"field": "consent.code", "message": "the code is wrong"},
            {"field": "form.date_of_birth", "message": "Date of birth: required"},
            {"field": "documents.birth_declaration", "message": "Declaration: upload it"},
        ],
    }
    client, fake = counter(
        {
            ("POST", "/documents"): lambda request: (
                201,
                {"sha256": hashlib.sha256(request.body).hexdigest(), "media_type": "x"},
            ),
            ("POST", "/counter/files"): (422, problems),
        }
    )
    _start(client)
    page = _post_form(
        client,
        {
            "local_body": "KL-EKM-KOC",
            "field-mother_name": "Asha Menon",
            "consent_code": "111 111",
            "document-parent_identity_proof": (io.BytesIO(PDF), "scan.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert page.status_code == 400
    filed = json.loads(_sent(fake, "POST", "/counter/files")[-1].body)
    assert filed["consent"] == {"consent_id": CONSENT["consent_id"], "code": "111111"}
    assert filed["documents"] == {"parent_identity_proof": hashlib.sha256(PDF).hexdigest()}
    assert filed["local_body"] == "KL-EKM-KOC" and filed["form"]["mother_name"] == "Asha Menon"
    upload = _sent(fake, "POST", "/documents")[-1]
    assert upload.headers["Authorization"] == "Bearer access-1", "scans: the operator's uploads"
    text = page.data.decode()
    summary = error_summary(text)
    assert re.findall(r'<a href="#([\w-]+)">', summary) == [
        "field-date_of_birth",
        "document-birth_declaration",
        "consent_code",
    ], "every problem at once, the code's last as on the page"
    assert "The code is not right, or it has expired or been used." in summary
    assert 'id="consent_code-error-1"' in text and 'value="111111"' not in text
    assert f'name="uploaded-parent_identity_proof" value="{hashlib.sha256(PDF).hexdigest()}"' in (
        text
    )
    assert 'value="Asha Menon"' in text and CONSENT["consent_id"] not in text


def test_a_missing_code_or_office_is_asked_for_with_every_other_problem_and_nothing_is_filed():
    checked = {"problems": [{"field": "form.date_of_birth", "message": "Date of birth: required"}]}
    client, fake = counter({("POST", "/services/birth-certificate/validation"): (200, checked)})
    _start(client)
    page = _post_form(client, {"consent_code": "12"})
    assert page.status_code == 400 and _sent(fake, "POST", "/counter/files") == []
    text = page.data.decode()
    assert '<a href="#local_body">Choose the local body the citizen is applying to.' in text
    assert '<a href="#consent_code">Enter the 6 digits of the code the citizen received.' in text
    asked = json.loads(_sent(fake, "POST", "/services/birth-certificate/validation")[-1].body)
    assert "local_body" not in asked and "consent" not in asked, "the rest is checked, not filed"
    assert '<a href="#field-date_of_birth">' in text, "the form's own problems named now too"


def test_a_right_code_files_and_the_acknowledgement_is_ready_to_print():
    client, fake = counter(
        {
            ("POST", "/counter/files"): (201, _filed()),
            ("GET", f"/files/{FILE_ID}"): (200, _filed()),
        }
    )
    _start(client)
    sent = _post_form(client, {"local_body": "KL-EKM-KOC", "consent_code": "123456"})
    assert sent.status_code == 303 and sent.headers["Location"] == f"/counter/files/{FILE_ID}"
    assert client.get("/counter/file").headers["Location"] == "/counter", "one consent, one file"
    page = client.get(sent.headers["Location"])
    text = page.data.decode()
    for expected in (
        NUMBER,
        "Birth registration and certificate",
        "Kochi Corporation",
        "The citizen at +91984*****45",
        "Filed at the counter by Akshaya centre, Edappally (Akshaya centre operator) "
        "with the citizen's consent",
        "12 December 2026",
        f"http://localhost/track?number={NUMBER}",  # readable, to type from paper
        "counter.css",
        "print.js",
        'id="print-button" hidden',
        "Ctrl+P",
    ):
        assert expected in text, expected
    assert "<script>" not in text and "onclick" not in text
    client.get("/language/ml")
    assert "കൈപ്പറ്റ് രസീത്" in client.get(sent.headers["Location"]).data.decode()


def test_a_clerk_files_to_their_own_local_body():
    client, fake = counter({("POST", "/counter/files"): (201, _filed())}, me=CLERK)
    _start(client)
    page = client.get("/counter/file").data.decode()
    assert 'id="local_body">Kochi Corporation<' in page and 'name="local_body"' not in page
    _post_form(client, {"local_body": "KL-TVM-TVC", "consent_code": "123456"})
    filed = json.loads(_sent(fake, "POST", "/counter/files")[-1].body)
    assert filed["local_body"] == "KL-EKM-KOC", "their own body, whatever the form says"


def test_only_the_counter_that_filed_a_file_prints_its_acknowledgement():
    someone_else = {**FILED_BY, "actor_id": "another-operator"}
    client, _ = counter({("GET", f"/files/{FILE_ID}"): (200, _filed(someone_else))})
    assert client.get(f"/counter/files/{FILE_ID}").status_code == 404
    client, _ = counter({("GET", f"/files/{FILE_ID}"): (404, {"title": "Not found"})})
    assert client.get(f"/counter/files/{FILE_ID}").status_code == 404


@pytest.mark.parametrize(
    ("language", "expected"), [("en", "Akshaya centre operator"), ("ml", "അക്ഷയ")]
)
def test_the_timeline_names_the_counter_role_that_filed(language, expected):
    client, _ = portal({})
    with client.application.test_request_context():
        from flask import g

        g.translations = i18n.load_catalogues()[language]
        assert expected in role_name("akshaya_operator")
