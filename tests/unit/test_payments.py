"""The fake payment provider: signed callbacks, and every problem at once."""

import json

import pytest

from ksmart_applications.payments import (
    PAYMENT_PROVIDER_ENV,
    PAYMENT_SECRET_ENV,
    FakePaymentProvider,
    PaymentNotice,
    provider_from_environment,
)
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
