"""Fee payment providers: asking for a payment, and believing the answer.

A provider tells us a payment went through by calling us back. That callback
arrives from the internet, so nothing in it is believed until its signature
checks out; only then is the body read. Even a genuine notice is only the
provider's word about *a* payment: the caller still checks that the file and
amount are the ones it asked for.

As with a real provider, the citizen pays on the provider's own page
(checkout_url) and is sent back to the return URL the payment was created
with; what they are shown on return is never the outcome, the callback is.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from ksmart_common import signatures
from ksmart_common.canonical import canonical_json
from ksmart_common.errors import InvalidInput

PAYMENT_SECRET_ENV = "KSMART_PAYMENT_SECRET"
PAYMENT_PROVIDER_ENV = "KSMART_PAYMENT_PROVIDER"
# The fake provider's checkout page (the dev inbox serves it: ksmart_ops.dev_checkout);
# unset, the fake provider has no page and a payment is confirmed by
# `ksmart-admin fake-pay`.
CHECKOUT_URL_ENV = "KSMART_FAKE_PAYMENT_CHECKOUT_URL"
# What the fake provider's checkout link is signed for: its parameters
# (never the callback's body) with this label first, so that a link's
# signature can never pass for a callback's, nor one for the other.
CHECKOUT_LINK_LABEL = b"ksmart-fake-checkout-link\n"
CHECKOUT_SIGNATURE_PARAMETER = "signature"
MIN_SECRET_LENGTH = 32
STATUSES = ("captured", "failed")


@dataclass(frozen=True)
class PaymentRequest:
    """A payment the provider is expecting; the citizen pays at checkout_url
    (None when there is nowhere to go, as with the fake provider)."""

    payment_id: str
    provider: str
    amount_paise: int
    checkout_url: str | None


@dataclass(frozen=True)
class PaymentNotice:
    """The provider's authenticated word on how a payment ended."""

    payment_id: str
    provider: str
    file_id: str
    amount_paise: int
    status: str  # "captured" or "failed"


@dataclass(frozen=True)
class Checkout:
    """What the fake provider's checkout link carries: the payment to take,
    and where to send the citizen afterwards (None: nowhere was given)."""

    payment_id: str
    file_id: str
    reference: str
    amount_paise: int
    return_url: str | None


class PaymentProvider(Protocol):
    name: str

    def create_payment(
        self, file_id: str, reference: str, amount_paise: int, return_url: str | None = None
    ) -> PaymentRequest:
        """Ask the provider to collect amount_paise for the file; reference is
        what the citizen sees on the receipt, return_url where the provider
        sends them back (already checked against the allowed origins)."""
        ...

    def parse_callback(self, body: bytes, signature: str | None) -> PaymentNotice:
        """The notice in a callback. Unauthenticated if the signature is
        missing or wrong (checked before the body is read); InvalidInput
        naming every problem if a genuine body is malformed."""
        ...


class FakePaymentProvider:
    """The local provider for development and tests: nothing is charged.

    A callback is compact canonical JSON with payment_id, file_id,
    amount_paise and status, signed with HMAC-SHA256 over the raw body bytes;
    the signature header holds `sha256=<hex digest>`. `callback_body` and
    `sign` make a genuine callback, so tests and a dev command can "pay".

    Given a checkout page's address, a payment's checkout_url is a link to
    it whose parameters (payment, file, amount, return URL) are signed with
    the same secret: the page, which holds the secret too, takes no other
    amount and sends the citizen nowhere else (`read_checkout`).
    """

    name = "fake"

    def __init__(self, secret: bytes, checkout_url: str | None = None) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the payment secret must be at least {MIN_SECRET_LENGTH} bytes")
        self._secret = secret
        self._checkout_url = checkout_url

    def create_payment(
        self, file_id: str, reference: str, amount_paise: int, return_url: str | None = None
    ) -> PaymentRequest:
        if not _is_positive_int(amount_paise):
            raise InvalidInput(
                "the amount is not payable",
                [{"field": "amount_paise", "message": "must be a positive whole number"}],
            )
        payment_id = str(uuid.uuid4())
        checkout_url = None
        if self._checkout_url:
            checkout = Checkout(payment_id, file_id, reference, amount_paise, return_url)
            checkout_url = f"{self._checkout_url}?{urlencode(self.checkout_parameters(checkout))}"
        return PaymentRequest(payment_id, self.name, amount_paise, checkout_url)

    def checkout_parameters(self, checkout: Checkout) -> dict[str, str]:
        """The checkout link's query: the payment's fields and their signature."""
        parameters = {
            "payment_id": checkout.payment_id,
            "file_id": checkout.file_id,
            "reference": checkout.reference,
            "amount_paise": str(checkout.amount_paise),
        }
        if checkout.return_url is not None:
            parameters["return_url"] = checkout.return_url
        signature = self.sign(CHECKOUT_LINK_LABEL + canonical_json(parameters))
        return {**parameters, CHECKOUT_SIGNATURE_PARAMETER: signature}

    def read_checkout(self, parameters: Mapping[str, str]) -> Checkout:
        """The payment a checkout link carries, once its signature shows this
        provider made it: Unauthenticated for a link changed in any way (a
        parameter altered, added or left out) or signed by anyone else."""
        signed = {
            name: value
            for name, value in parameters.items()
            if name != CHECKOUT_SIGNATURE_PARAMETER
        }
        signatures.check(
            CHECKOUT_LINK_LABEL + canonical_json(signed),
            parameters.get(CHECKOUT_SIGNATURE_PARAMETER),
            self._secret,
            CHECKOUT_SIGNATURE_PARAMETER,
            "checkout link",
        )
        try:
            return Checkout(
                payment_id=signed["payment_id"],
                file_id=signed["file_id"],
                reference=signed["reference"],
                amount_paise=int(signed["amount_paise"]),
                return_url=signed.get("return_url"),
            )
        except (KeyError, ValueError) as error:  # signed, yet not one this provider makes
            raise InvalidInput("the checkout link is incomplete") from error

    def sign(self, body: bytes) -> str:
        return signatures.sign(body, self._secret)

    def callback_body(
        self,
        file_id: str,
        amount_paise: int,
        payment_id: str | None = None,
        status: str = "captured",
    ) -> bytes:
        return canonical_json(
            {
                "payment_id": payment_id or str(uuid.uuid4()),
                "file_id": file_id,
                "amount_paise": amount_paise,
                "status": status,
            }
        )

    def parse_callback(self, body: bytes, signature: str | None) -> PaymentNotice:
        self._verify(body, signature)
        document = _parse_body(body)
        return PaymentNotice(
            payment_id=document["payment_id"],
            provider=self.name,
            file_id=document["file_id"],
            amount_paise=document["amount_paise"],
            status=document["status"],
        )

    def _verify(self, body: bytes, signature: str | None) -> None:
        header = signatures.PAYMENT_SIGNATURE_HEADER
        signatures.check(body, signature, self._secret, header, "callback")


def _is_positive_int(value: Any) -> bool:
    # bool is an int in Python; True paise is not an amount.
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _parse_body(body: bytes) -> dict[str, Any]:
    """The callback's fields, or InvalidInput listing everything wrong."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(
            "the callback body is malformed",
            [{"field": "body", "message": "must be a JSON object in UTF-8"}],
        ) from None
    if not isinstance(document, dict):
        raise InvalidInput(
            "the callback body is malformed",
            [{"field": "body", "message": "must be a JSON object"}],
        )
    problems = []
    for field in ("payment_id", "file_id"):
        if field not in document:
            problems.append({"field": field, "message": "is required"})
        elif not isinstance(document[field], str) or not document[field]:
            problems.append({"field": field, "message": "must be a non-empty string"})
    if "amount_paise" not in document:
        problems.append({"field": "amount_paise", "message": "is required"})
    elif not _is_positive_int(document["amount_paise"]):
        problems.append({"field": "amount_paise", "message": "must be a positive whole number"})
    if "status" not in document:
        problems.append({"field": "status", "message": "is required"})
    elif document["status"] not in STATUSES:
        problems.append({"field": "status", "message": f"must be one of: {', '.join(STATUSES)}"})
    if problems:
        raise InvalidInput("the callback body is malformed", problems)
    return document


def provider_from_environment(environ: Mapping[str, str] | None = None) -> PaymentProvider | None:
    """The configured provider, or None when payments are not configured.

    The provider is named explicitly (KSMART_PAYMENT_PROVIDER): a fake one
    that charges nothing must never switch itself on because a secret
    happens to be set. There is deliberately no default secret either: a
    secret in the code would let anyone who reads it forge "captured"
    callbacks.
    """
    environ = os.environ if environ is None else environ
    name = environ.get(PAYMENT_PROVIDER_ENV, "")
    if name == "":
        return None
    if name != FakePaymentProvider.name:
        raise ValueError(
            f"{PAYMENT_PROVIDER_ENV}={name!r}: the only provider built so far is "
            f"{FakePaymentProvider.name!r} (development and tests)"
        )
    return FakePaymentProvider(
        _payment_secret(environ).encode("utf-8"), environ.get(CHECKOUT_URL_ENV) or None
    )


def _payment_secret(environ: Mapping[str, str]) -> str:
    """KSMART_PAYMENT_SECRET, refused when too short to be safe."""
    secret = environ.get(PAYMENT_SECRET_ENV, "")
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"{PAYMENT_SECRET_ENV} must be at least {MIN_SECRET_LENGTH} characters"
            f" (it has {len(secret)}); generate one with"
            " `python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    return secret
