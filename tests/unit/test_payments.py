"""The fake payment provider: signed callbacks, every problem at once, and
signed links to its checkout page."""

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from ksmart_applications.payments import (
    CHECKOUT_LINK_LABEL,
    CHECKOUT_URL_ENV,
    PAYMENT_PROVIDER_ENV,
    PAYMENT_SECRET_ENV,
    Checkout,
    FakePaymentProvider,
    PaymentNotice,
    provider_from_environment,
)
from ksmart_common.canonical import canonical_json
from ksmart_common.errors import InvalidInput, Unauthenticated
from ksmart_common.signatures import PAYMENT_SIGNATURE_HEADER as SIGNATURE_HEADER

SECRET = b"s" * 32


@pytest.fixture
def provider():
    return FakePaymentProvider(SECRET)


def test_signature_header_name():
    assert SIGNATURE_HEADER == "X-Payment-Signature"


def test_create_payment(provider):
    request = provider.create_payment("file-1", "KS/2025/1", 5_000)
    assert request.provider == "fake"
    assert request.amount_paise == 5_000
    assert request.checkout_url is None
    assert request.payment_id != provider.create_payment("file-1", "KS/2025/1", 5_000).payment_id


@pytest.mark.parametrize("amount", [0, -1, True, 1.5])
def test_create_payment_refuses_nonsense_amounts(provider, amount):
    with pytest.raises(InvalidInput):
        provider.create_payment("file-1", "KS/2025/1", amount)


def test_a_genuine_callback_parses(provider):
    body = provider.callback_body("file-1", 5_000, payment_id="pay-1")
    assert (
        body == b'{"amount_paise":5000,"file_id":"file-1","payment_id":"pay-1","status":"captured"}'
    )
    notice = provider.parse_callback(body, provider.sign(body))
    assert notice == PaymentNotice("pay-1", "fake", "file-1", 5_000, "captured")


def test_a_failed_payment_parses(provider):
    body = provider.callback_body("file-1", 5_000, status="failed")
    notice = provider.parse_callback(body, provider.sign(body))
    assert notice.status == "failed"
    assert notice.payment_id


def test_signature_format(provider):
    signature = provider.sign(b"{}")
    assert signature.startswith("sha256=")
    assert len(signature) == len("sha256=") + 64


def test_a_tampered_body_is_unauthenticated(provider):
    body = provider.callback_body("file-1", 5_000)
    signature = provider.sign(body)
    tampered = body.replace(b"5000", b"1")
    with pytest.raises(Unauthenticated):
        provider.parse_callback(tampered, signature)


def test_a_callback_signed_with_another_secret_is_unauthenticated(provider):
    other = FakePaymentProvider(b"o" * 32)
    body = other.callback_body("file-1", 5_000)
    with pytest.raises(Unauthenticated):
        provider.parse_callback(body, other.sign(body))


@pytest.mark.parametrize("signature", [None, ""])
def test_a_missing_signature_is_unauthenticated(provider, signature):
    with pytest.raises(Unauthenticated):
        provider.parse_callback(provider.callback_body("file-1", 5_000), signature)


@pytest.mark.parametrize("prefix", ["", "sha1=", "SHA256=", "sha256:"])
def test_a_wrong_prefix_is_unauthenticated(provider, prefix):
    body = provider.callback_body("file-1", 5_000)
    digest = provider.sign(body).removeprefix("sha256=")
    with pytest.raises(Unauthenticated):
        provider.parse_callback(body, prefix + digest)


def test_a_non_ascii_signature_is_unauthenticated_not_a_crash(provider):
    with pytest.raises(Unauthenticated):
        provider.parse_callback(b"{}", "sha256=é" * 10)


def test_the_signature_is_checked_before_the_body_is_read(provider):
    with pytest.raises(Unauthenticated):
        provider.parse_callback(b"not json", "sha256=" + "0" * 64)


def parse_signed(provider, body: bytes) -> list[dict[str, str]]:
    with pytest.raises(InvalidInput) as refused:
        provider.parse_callback(body, provider.sign(body))
    return refused.value.problems


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"null"])
def test_a_body_that_is_not_a_json_object(provider, body):
    assert [p["field"] for p in parse_signed(provider, body)] == ["body"]


def test_every_missing_key_is_named(provider):
    problems = parse_signed(provider, b"{}")
    assert {p["field"] for p in problems} == {"payment_id", "file_id", "amount_paise", "status"}
    assert all(p["message"] == "is required" for p in problems)


def test_every_bad_value_is_named_at_once(provider):
    body = json.dumps(
        {"payment_id": "", "file_id": 7, "amount_paise": "5000", "status": "pending"}
    ).encode()
    problems = parse_signed(provider, body)
    assert [p["field"] for p in problems] == ["payment_id", "file_id", "amount_paise", "status"]


@pytest.mark.parametrize("amount", [0, -5, 1.5, True, None, "100"])
def test_the_amount_must_be_a_positive_whole_number(provider, amount):
    body = provider.callback_body("file-1", amount)
    assert [p["field"] for p in parse_signed(provider, body)] == ["amount_paise"]


@pytest.mark.parametrize("status", ["pending", "CAPTURED", "", None])
def test_the_status_must_be_captured_or_failed(provider, status):
    body = provider.callback_body("file-1", 5_000, status=status)
    assert [p["field"] for p in parse_signed(provider, body)] == ["status"]


FAKE = {PAYMENT_PROVIDER_ENV: "fake"}


@pytest.mark.parametrize(
    "environ", [{}, {PAYMENT_PROVIDER_ENV: ""}, {PAYMENT_SECRET_ENV: "k" * 64}]
)
def test_without_a_named_provider_payments_are_not_configured(environ):
    # A secret alone never switches on a provider that charges nothing.
    assert provider_from_environment(environ) is None


def test_the_fake_provider_is_named_and_given_a_secret_of_32_characters():
    provider = provider_from_environment({**FAKE, PAYMENT_SECRET_ENV: "k" * 32})
    assert isinstance(provider, FakePaymentProvider)
    body = provider.callback_body("file-1", 100)
    assert (
        provider.parse_callback(body, FakePaymentProvider(b"k" * 32).sign(body)).amount_paise == 100
    )


@pytest.mark.parametrize("secret", ["", "short", "k" * 31])
def test_a_missing_or_short_secret_is_refused(secret):
    with pytest.raises(ValueError, match=PAYMENT_SECRET_ENV):
        provider_from_environment({**FAKE, PAYMENT_SECRET_ENV: secret})


def test_an_unknown_provider_is_refused():
    with pytest.raises(ValueError, match=PAYMENT_PROVIDER_ENV):
        provider_from_environment({PAYMENT_PROVIDER_ENV: "paypal", PAYMENT_SECRET_ENV: "k" * 40})


def test_the_provider_itself_refuses_a_short_secret():
    with pytest.raises(ValueError):
        FakePaymentProvider(b"k" * 31)


def test_reads_the_process_environment(monkeypatch):
    monkeypatch.delenv(PAYMENT_PROVIDER_ENV, raising=False)
    monkeypatch.setenv(PAYMENT_SECRET_ENV, "k" * 40)
    assert provider_from_environment() is None
    monkeypatch.setenv(PAYMENT_PROVIDER_ENV, "fake")
    assert provider_from_environment() is not None


# -- the checkout link (the development provider's page) ---------------------

CHECKOUT_PAGE = "http://127.0.0.1:8026/checkout"
RETURN_URL = "http://127.0.0.1:8080/files/f-1/payment"


def _link(provider, return_url=RETURN_URL) -> dict[str, str]:
    request = provider.create_payment("file-1", "KS/2025/1", 5_000, return_url)
    assert request.checkout_url.startswith(CHECKOUT_PAGE + "?")
    return dict(parse_qsl(urlsplit(request.checkout_url).query))


def test_with_a_checkout_page_a_payment_links_to_it_with_everything_signed():
    provider = FakePaymentProvider(SECRET, CHECKOUT_PAGE)
    link = _link(provider)
    assert link["signature"].startswith("sha256=")
    checkout = provider.read_checkout(link)
    assert checkout == Checkout(link["payment_id"], "file-1", "KS/2025/1", 5_000, RETURN_URL)


def test_a_link_without_a_return_url_reads_as_one_going_nowhere():
    provider = FakePaymentProvider(SECRET, CHECKOUT_PAGE)
    assert provider.read_checkout(_link(provider, return_url=None)).return_url is None


@pytest.mark.parametrize(
    "change",
    [
        {"amount_paise": "1"},
        {"file_id": "file-2"},
        {"payment_id": "pay-other"},
        {"reference": "KS/2025/2"},
        {"return_url": "https://evil.example/"},
        {"extra": "1"},
        {"signature": "sha256=" + "0" * 64},
    ],
)
def test_a_link_changed_in_any_way_is_refused(change):
    provider = FakePaymentProvider(SECRET, CHECKOUT_PAGE)
    with pytest.raises(Unauthenticated):
        provider.read_checkout({**_link(provider), **change})


@pytest.mark.parametrize("left_out", ["return_url", "signature", "amount_paise"])
def test_a_link_missing_a_part_is_refused(left_out):
    provider = FakePaymentProvider(SECRET, CHECKOUT_PAGE)
    link = _link(provider)
    del link[left_out]
    with pytest.raises(Unauthenticated):
        provider.read_checkout(link)


def test_a_link_made_with_another_secret_is_refused():
    other = FakePaymentProvider(b"o" * 32, CHECKOUT_PAGE)
    with pytest.raises(Unauthenticated):
        FakePaymentProvider(SECRET, CHECKOUT_PAGE).read_checkout(_link(other))


def test_a_links_signature_is_no_callbacks_signature(provider):
    """The link's parameters are signed under a label of their own: a
    signature copied off a checkout link never authenticates a callback."""
    body = provider.callback_body("file-1", 5_000, payment_id="pay-1")
    parameters = {"payment_id": "pay-1", "file_id": "file-1", "amount_paise": "5000"}
    link_signature = provider.sign(CHECKOUT_LINK_LABEL + canonical_json(parameters))
    assert provider.sign(body) != link_signature
    with pytest.raises(Unauthenticated):
        provider.parse_callback(canonical_json(parameters), link_signature)


def test_the_environment_names_the_checkout_page():
    environ = {
        PAYMENT_PROVIDER_ENV: "fake",
        PAYMENT_SECRET_ENV: "s" * 32,
        CHECKOUT_URL_ENV: CHECKOUT_PAGE,
    }
    link = provider_from_environment(environ).create_payment("f", "r", 100).checkout_url
    assert link.startswith(CHECKOUT_PAGE)
    without = {k: v for k, v in environ.items() if k != CHECKOUT_URL_ENV}
    assert provider_from_environment(without).create_payment("f", "r", 100).checkout_url is None
