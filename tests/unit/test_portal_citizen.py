"""The rest of a citizen's journey in the portal, with the gateway faked at
the HTTP boundary (tests.unit.test_portal's FakeGateway): paying a file's
fee, answering the office with documents, every problem of an application
without an office, notifications and how the citizen is told."""

from __future__ import annotations

import io
import json

from tests.unit.test_portal import (
    DEFINITION,
    FILE_ID,
    PDF,
    _file,
    applying,
    csrf_of,
    post_application,
    signed_in,
)

PAYMENT = {"payment_id": "pay-1", "provider": "fake", "amount_paise": 1000, "checkout_url": None}
OWING = _file(fee_due_paise=1000, paid_paise=0, payments=[])
PAID = _file(fee_due_paise=0, paid_paise=1000, payments=["pay-1"])


def _posts(fake, path: str) -> list:
    return [r for r in fake.sent if r.method == "POST" and r.path_url.startswith(path)]


def test_the_fee_due_is_shown_in_rupees_with_a_pay_button_that_goes_to_the_provider():
    provider = {**PAYMENT, "checkout_url": "https://pay.example/checkout/pay-1"}
    client, fake = signed_in(
        {
            ("GET", f"/files/{FILE_ID}"): (200, OWING),
            ("POST", f"/files/{FILE_ID}/payments"): (201, provider),
        }
    )
    page = client.get(f"/files/{FILE_ID}").data.decode()
    assert "₹10" in page and "Pay ₹10" in page
    assert f'action="/files/{FILE_ID}/pay"' in page
    paying = client.post(f"/files/{FILE_ID}/pay", data={"csrf_token": csrf_of(page.encode())})
    assert paying.status_code == 303
    # Through a page of the portal's own: the file page's form-action 'self'
    # would stop a redirect from its form to another origin.
    assert paying.headers["Location"] == f"/files/{FILE_ID}/payments/pay-1/checkout"
    going = client.get(paying.headers["Location"]).data.decode()
    refresh = '<meta http-equiv="refresh" content="0; url=https://pay.example/checkout/pay-1">'
    assert refresh in going
    assert 'href="https://pay.example/checkout/pay-1"' in going
    assert "Continue to the payment service" in going
    started = _posts(fake, f"/api/v1/files/{FILE_ID}/payments")[0]
    assert started.headers["Authorization"]
    # The provider sends the citizen back to this file's payment page here.
    assert json.loads(started.body) == {"return_url": f"http://localhost/files/{FILE_ID}/payment"}


def test_the_way_to_a_providers_page_is_only_the_one_the_platform_gave():
    """The hop to the provider's page takes its address from the session,
    never from the request: another payment's id goes to that payment's own
    page here, not anywhere else."""
    client, _ = signed_in({("GET", f"/files/{FILE_ID}"): (200, OWING)})
    going = client.get(f"/files/{FILE_ID}/payments/pay-9/checkout?url=https://evil.example/")
    assert going.status_code == 303
    assert going.headers["Location"] == f"/files/{FILE_ID}/payments/pay-9"


def test_behind_a_proxy_the_return_address_is_the_portals_public_one():
    client, fake = signed_in(
        {
            ("GET", f"/files/{FILE_ID}"): (200, OWING),
            ("POST", f"/files/{FILE_ID}/payments"): (201, PAYMENT),
        }
    )
    client.application.config["PUBLIC_URL"] = "https://ksmart.example.org"
    token = csrf_of(client.get("/account").data)
    client.post(f"/files/{FILE_ID}/pay", data={"csrf_token": token})
    started = _posts(fake, f"/api/v1/files/{FILE_ID}/payments")[0]
    assert json.loads(started.body)["return_url"] == (
        f"https://ksmart.example.org/files/{FILE_ID}/payment"
    )


def test_the_page_a_provider_returns_to_asks_the_platform_whether_the_fee_was_paid():
    answers = iter([OWING, PAID])
    client, _ = signed_in({("GET", f"/files/{FILE_ID}"): lambda _r: (200, next(answers))})
    pending = client.get(f"/files/{FILE_ID}/payment?status=captured").data.decode()
    assert "Waiting for the payment service" in pending and "We have received" not in pending
    assert "nothing was taken: you can pay again from your file" in pending
    paid = client.get(f"/files/{FILE_ID}/payment").data.decode()
    assert "We have received ₹10 for Birth registration and certificate." in paid


def test_with_no_page_of_the_providers_the_citizen_comes_to_the_payments_page():
    client, _ = signed_in(
        {
            ("GET", f"/files/{FILE_ID}"): (200, OWING),
            ("POST", f"/files/{FILE_ID}/payments"): (201, PAYMENT),
        }
    )
    token = csrf_of(client.get("/account").data)
    paying = client.post(f"/files/{FILE_ID}/pay", data={"csrf_token": token})
    assert paying.headers["Location"] == f"/files/{FILE_ID}/payments/pay-1"


def test_the_payments_page_says_what_the_platform_recorded_never_what_the_address_says():
    answers = iter([OWING, PAID])
    client, _ = signed_in({("GET", f"/files/{FILE_ID}"): lambda _r: (200, next(answers))})
    pending = client.get(f"/files/{FILE_ID}/payments/pay-1?status=paid&paid=true").data.decode()
    assert "Waiting for the payment service" in pending and "We have received" not in pending
    paid = client.get(f"/files/{FILE_ID}/payments/pay-1").data.decode()
    assert "We have received ₹10 for Birth registration and certificate." in paid


def test_a_file_with_nothing_due_offers_no_payment_and_a_refused_start_says_so():
    answers = iter([PAID, OWING])
    client, _ = signed_in(
        {
            ("GET", f"/files/{FILE_ID}"): lambda _r: (200, next(answers)),
            ("POST", f"/files/{FILE_ID}/payments"): (400, {"status": 400, "title": "Bad"}),
        }
    )
    paid = client.get(f"/files/{FILE_ID}").data.decode()
    assert "Pay the fee" not in paid and 'id="fee-paid">₹10<' in paid
    token = csrf_of(client.get("/account").data)
    refused = client.post(f"/files/{FILE_ID}/pay", data={"csrf_token": token})
    assert refused.status_code == 400
    assert "The payment could not be started." in refused.data.decode()


def _asked(definition: dict) -> tuple:
    """A birth-certificate file returned to its applicant, the answers as
    filed, and the definition it was filed under (by hash)."""
    asked = _file(
        state="clarification_requested",
        waits_on="applicant",
        version=3,
        allowed_actions=["resubmit"],
        definition_hash="a" * 64,
        form={"place_of_birth": "home"},
        documents={"birth_declaration": {"sha256": "b" * 64, "filename": "old.pdf"}},
        clarification={"asked": "Attach a clearer declaration.", "role": "clerk"},
    )
    return asked, {("GET", f"/definitions/{'a' * 64}"): (200, definition)}


def _answer(client, **fields):
    """The answer form sent with its token, as the multipart form it is."""
    token = csrf_of(client.get("/account").data)
    data = {"csrf_token": token, **fields}
    return client.post(f"/files/{FILE_ID}/answer", data=data, content_type="multipart/form-data")


def test_answering_with_a_document_attaches_it_then_resubmits_with_the_version_it_made():
    asked, definition = _asked(DEFINITION)
    attached = {**asked, "version": 4}
    client, fake = signed_in(
        {
            **definition,
            ("GET", f"/files/{FILE_ID}"): (200, asked),
            ("POST", "/documents"): (201, {"sha256": "c" * 64, "media_type": "application/pdf"}),
            ("POST", f"/files/{FILE_ID}/documents"): (200, attached),
            ("POST", f"/files/{FILE_ID}/actions"): (200, _file(version=5)),
        }
    )
    page = client.get(f"/files/{FILE_ID}").data.decode()
    assert 'enctype="multipart/form-data"' in page
    assert 'id="document-birth_declaration"' in page and "Given already: old.pdf." in page
    assert 'data-max-bytes="' in page and "uploads.js" in page
    assert 'id="document-hospital_certificate"' not in page, "filed from home: not asked"
    chosen = {"document-birth_declaration": (io.BytesIO(PDF), "declaration.pdf")}
    sent = _answer(client, version="3", remarks="A clearer scan.", **chosen)
    assert sent.status_code == 303
    attach = _posts(fake, f"/api/v1/files/{FILE_ID}/documents")
    assert json.loads(attach[0].body) == {"code": "birth_declaration", "sha256": "c" * 64}
    resubmit = _posts(fake, f"/api/v1/files/{FILE_ID}/actions")[0]
    assert resubmit.headers["If-Match"] == '"4"', "the version the attachment made"
    assert json.loads(resubmit.body) == {"action": "resubmit", "remarks": "A clearer scan."}


def test_every_problem_of_an_answer_at_once_and_nothing_attached_until_all_are_fixed():
    asked, definition = _asked(DEFINITION)
    refused = {"status": 422, "problems": [{"field": "body", "message": "not a PDF"}]}
    client, fake = signed_in(
        {
            **definition,
            ("GET", f"/files/{FILE_ID}"): (200, asked),
            ("POST", "/documents"): (422, refused),
        }
    )
    page = _answer(
        client, version="3", **{"document-birth_declaration": (io.BytesIO(b"MZ"), "x.exe")}
    )
    text = page.data.decode()
    assert page.status_code == 400
    assert '<a href="#remarks">' in text and '<a href="#document-birth_declaration">' in text
    assert _posts(fake, f"/api/v1/files/{FILE_ID}/documents") == []
    assert _posts(fake, f"/api/v1/files/{FILE_ID}/actions") == []


def test_an_answer_to_a_file_that_changed_sends_nothing_and_says_so():
    asked, definition = _asked(DEFINITION)
    client, fake = signed_in({**definition, ("GET", f"/files/{FILE_ID}"): (200, asked)})
    chosen = {"document-birth_declaration": (io.BytesIO(PDF), "declaration.pdf")}
    page = _answer(client, version="2", remarks="Here.", **chosen)
    assert page.status_code == 409
    assert "This file changed while you were answering" in page.data.decode()
    assert _posts(fake, "/api/v1/documents") == [] and _posts(fake, "/api/v1/files/") == []


def test_without_an_office_every_other_problem_is_named_too_and_nothing_is_filed():
    problems = {
        "problems": [
            {"field": "form.mother_name", "message": "Mother's name is required"},
            {"field": "documents.parent_identity_proof", "message": "Attach it"},
        ]
    }
    client, fake = applying({("POST", "/services/birth-certificate/validation"): (200, problems)})
    page = post_application(client, {"local_body": ""})
    text = page.data.decode()
    assert page.status_code == 400
    for field in ("local_body", "field-mother_name", "document-parent_identity_proof"):
        assert f'<a href="#{field}">' in text
    checked = _posts(fake, "/api/v1/services/birth-certificate/validation")
    assert "local_body" not in json.loads(checked[0].body)
    assert _posts(fake, "/api/v1/files") == []


def test_each_document_says_its_size_limit_for_the_pages_script():
    client, _ = applying()
    text = client.get("/services/birth-certificate/apply").data.decode()
    limit = DEFINITION["documents"][0]["max_bytes"]
    assert f'data-max-bytes="{limit}"' in text
    assert 'id="document-parent_identity_proof-too-large" class="error-message"' in text
    assert "This file is too large. Choose a file of up to" in text


FEED = {
    "notifications": [
        {
            "notification_id": "n-1",
            "template": "clarification_requested",
            "title": "The office needs something from you",
            "text": "Answer by 20 December.",
            "file_id": FILE_ID,
            "file_number": "KL-EKM-KOC/BR/2026/000123",
            "created_at": "2026-12-06T10:00:00Z",
            "read_at": None,
        }
    ],
    "unread_count": 1,
    "next_cursor": "later",
}


def test_notifications_are_listed_newest_first_and_all_marked_read():
    client, fake = signed_in(
        {
            ("GET", "/notifications"): (200, FEED),
            ("POST", "/notifications/read"): (200, {"marked": 1, "unread_count": 0}),
        }
    )
    page = client.get("/notifications").data.decode()
    assert 'href="/notifications">Notifications</a>' in page, "the header's link"
    assert "The office needs something from you" in page
    assert "You have 1 unread notification." in page
    assert f'href="/files/{FILE_ID}"' in page and 'href="/notifications?cursor=later"' in page
    marked = client.post("/notifications/read", data={"csrf_token": csrf_of(page.encode())})
    assert marked.status_code == 303
    assert json.loads(_posts(fake, "/api/v1/notifications/read")[0].body) == {}
    assert "All your notifications are marked as read." in client.get("/notifications").text


PREFERENCES = {
    "language": "en",
    "channels": ["sms"],
    "available_channels": ["sms"],
    "informational": True,
    "quiet_hours": None,
    "time_zone": "Asia/Kolkata",
}


def test_preferences_are_read_then_changed_with_a_patch_and_problems_go_beside_their_field():
    def patch(request):
        sent = json.loads(request.body)
        if sent["channels"] == ["email"]:
            return 422, {"status": 422, "problems": [{"field": "channels", "message": "no email"}]}
        return 200, {**PREFERENCES, **sent}

    client, fake = signed_in(
        {
            ("GET", "/notification-preferences"): (200, PREFERENCES),
            ("PATCH", "/notification-preferences"): patch,
            ("GET", "/notifications"): (200, {**FEED, "notifications": []}),
        }
    )
    page = client.get("/notifications/preferences").data.decode()
    assert 'name="language" value="en" checked' in page
    assert 'name="channels" value="sms" checked' in page
    form = {"csrf_token": csrf_of(page.encode()), "language": "ml", "informational": "no"}
    saved = client.post("/notifications/preferences", data=form)
    assert saved.status_code == 303
    patched = [r for r in fake.sent if r.method == "PATCH"]
    assert json.loads(patched[0].body) == {"language": "ml", "channels": [], "informational": False}
    wrong = client.post("/notifications/preferences", data={**form, "channels": "email"})
    assert wrong.status_code == 400
    text = wrong.data.decode()
    assert '<a href="#channels">Choose only the ways we can reach you, shown below.' in text
    assert 'name="language" value="ml" checked' in text, "what was sent stays chosen"
