"""Fee payment providers: asking for a payment, and believing the answer.

A provider tells us a payment went through by calling us back. That callback
arrives from the internet, so nothing in it is believed until its signature
checks out; only then is the body read. Even a genuine notice is only the
provider's word about *a* payment: the caller still checks that the file and
amount are the ones it asked for.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ksmart_common import signatures
from ksmart_common.canonical import canonical_json
from ksmart_common.errors import InvalidInput

PAYMENT_SECRET_ENV = "KSMART_PAYMENT_SECRET"
PAYMENT_PROVIDER_ENV = "KSMART_PAYMENT_PROVIDER"
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


class PaymentProvider(Protocol):
    name: str

    def create_payment(self, file_id: str, reference: str, amount_paise: int) -> PaymentRequest:
        """Ask the provider to collect amount_paise for the file; reference is
        what the citizen sees on the receipt."""
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
    """

    name = "fake"

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the payment secret must be at least {MIN_SECRET_LENGTH} bytes")
        self._secret = secret

    def create_payment(self, file_id: str, reference: str, amount_paise: int) -> PaymentRequest:
        if not _is_positive_int(amount_paise):
            raise InvalidInput(
                "the amount is not payable",
                [{"field": "amount_paise", "message": "must be a positive whole number"}],
            )
        return PaymentRequest(str(uuid.uuid4()), self.name, amount_paise, None)

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
    secret = environ.get(PAYMENT_SECRET_ENV, "")
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"{PAYMENT_SECRET_ENV} must be at least {MIN_SECRET_LENGTH} characters"
            f" (it has {len(secret)}); generate one with"
            " `python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    return FakePaymentProvider(secret.encode("utf-8"))
