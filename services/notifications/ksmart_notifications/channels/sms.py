"""SMS through an HTTP provider, and the provider's delivery receipts.

Sending: one JSON POST per message. The message id travels as the
provider's `reference` and as the `Idempotency-Key` header, so retrying a
request whose answer was lost (a timeout after the provider had accepted
it) does not text the citizen twice. That is what makes it safe to retry
transient failures (connection errors, timeouts, 429, 5xx) right here, a
few times with exponential back-off: most provider hiccups last a second
or two, and a sign-in code that arrives a minute late is useless. Any other
4xx means the provider will never take this request, so it fails at once as
permanent. The back-off uses time.sleep, which under the service's eventlet
monkey-patching yields to other green threads instead of blocking them.

Receipts: the provider later calls us back to say whether the handset got
the message. The callback arrives from the internet, so, as with payment
callbacks (ksmart_applications.payments), nothing in it is believed until its
HMAC-SHA256 signature over the raw body checks out; only then is the body
read, and a malformed genuine body is refused with every problem named.

The message text never appears in a log line or a failure reason: it may
hold a one-time code. Neither does the provider's response body, which may
echo the text back.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests

from ksmart_common import signatures
from ksmart_common.config import env
from ksmart_common.errors import InvalidInput
from ksmart_common.logging import get_logger
from ksmart_notifications.channels.base import (
    ConfigurationProblems,
    DeliveryFailed,
    OutgoingMessage,
    SendResult,
    positive_seconds,
    whole_number,
)

log = get_logger(__name__)

SMS_URL_ENV = "KSMART_SMS_URL"
SMS_API_KEY_ENV = "KSMART_SMS_API_KEY"
SMS_SENDER_ID_ENV = "KSMART_SMS_SENDER_ID"
SMS_TIMEOUT_ENV = "KSMART_SMS_TIMEOUT_SECONDS"
SMS_ATTEMPTS_ENV = "KSMART_SMS_ATTEMPTS"
SMS_RECEIPT_SECRET_ENV = "KSMART_SMS_RECEIPT_SECRET"

DEFAULT_SENDER_ID = "KSMART"
MIN_SECRET_LENGTH = 32
RECEIPT_STATUSES = ("delivered", "failed")

# GSM 03.38: the default alphabet and its extension table (each extension
# character costs two septets but needs no Unicode). Anything else (Malayalam,
# emoji, even the ASCII backtick) forces UCS-2, which the provider must be told.
_GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = "\f^{}\\[~]|€"
_GSM7 = frozenset(_GSM7_BASIC + _GSM7_EXTENSION)


def needs_unicode(text: str) -> bool:
    """True when the text cannot be sent in the GSM 7-bit alphabet."""
    return not set(text) <= _GSM7


class HttpSmsProvider:
    """Sends SMS through an HTTP provider's JSON API (see the module docstring)."""

    name = "sms"

    def __init__(
        self,
        url: str,
        api_key: str | None,
        sender_id: str,
        timeout_seconds: float = 10,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        if backoff_seconds < 0:
            raise ValueError("backoff_seconds must not be negative")
        self.url = url
        self.sender_id = sender_id
        self.timeout_seconds = timeout_seconds
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self._api_key = api_key
        # One session for every message: its connections (and their TLS
        # handshakes) are kept and reused, as a provider expects of a sender.
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"HttpSmsProvider(url={self.url!r}, sender_id={self.sender_id!r})"

    def send(self, message: OutgoingMessage) -> SendResult:
        body = {
            "to": message.destination,
            "text": message.text,
            "sender": self.sender_id,
            "reference": message.message_id,
            "unicode": needs_unicode(message.text),
        }
        headers = {"Idempotency-Key": message.message_id}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        reason = "not attempted"
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                time.sleep(self.backoff_seconds * 2 ** (attempt - 2))
            try:
                return self._post(body, headers)
            except DeliveryFailed as failure:
                if failure.permanent:
                    raise
                reason = failure.reason
            log.warning(
                "sms attempt failed",
                message_id=message.message_id,
                attempt=attempt,
                attempts=self.attempts,
                reason=reason,
            )
        raise DeliveryFailed(f"{reason} ({self.attempts} attempts)", permanent=False)

    def _post(self, body: dict[str, Any], headers: dict[str, str]) -> SendResult:
        """One request; DeliveryFailed says whether another could succeed."""
        try:
            response = self._session.post(
                self.url,
                json=body,
                headers=headers,
                timeout=self.timeout_seconds,
                # A redirect would re-send the body (and the key) somewhere
                # nobody configured.
                allow_redirects=False,
            )
        except requests.Timeout:
            raise DeliveryFailed(f"timed out after {self.timeout_seconds:g}s") from None
        except requests.ConnectionError:
            # The exception's text names the URL and socket details, never
            # anything useful that the type does not already say.
            raise DeliveryFailed("could not connect to the SMS provider") from None
        except requests.RequestException as error:
            raise DeliveryFailed(f"request failed ({type(error).__name__})") from None
        status = response.status_code
        if 200 <= status < 300:
            provider_message_id = _message_id_in(response)
            if provider_message_id is None:
                # Accepted, probably; asking again with the same idempotency
                # key is safe and should return the id this time.
                raise DeliveryFailed(f"provider answered {status} without a message id")
            return SendResult(provider_message_id)
        if status == 429 or status >= 500:
            raise DeliveryFailed(f"provider answered {status}")
        raise DeliveryFailed(f"provider answered {status}", permanent=True)


def _message_id_in(response: requests.Response) -> str | None:
    try:
        document = response.json()
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    provider_message_id = document.get("id")
    if not isinstance(provider_message_id, str) or not provider_message_id:
        return None
    return provider_message_id


# --- delivery receipts -----------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    """The provider's authenticated word on what became of a message."""

    provider_message_id: str
    reference: str | None  # our message_id, when the provider echoes it
    status: str  # "delivered" | "failed"
    error: str | None
    at: str | None


def sign_receipt(body: bytes, secret: bytes) -> str:
    """The X-Sms-Signature value for a receipt body: `sha256=<hex HMAC>`."""
    _check_secret(secret)
    return signatures.sign(body, secret)


def parse_receipt(body: bytes, signature: str | None, secret: bytes) -> Receipt:
    """The receipt in a callback. Unauthenticated if the signature is missing
    or wrong (checked before the body is read); InvalidInput naming every
    problem if a genuine body is malformed."""
    _verify(body, signature, secret)
    document = _parse_receipt_body(body)
    return Receipt(
        provider_message_id=document["id"],
        reference=document.get("reference"),
        status=document["status"],
        error=document.get("error"),
        at=document.get("at"),
    )


def _check_secret(secret: bytes) -> None:
    # A short (or empty) secret would let anyone forge "delivered".
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"the receipt secret must be at least {MIN_SECRET_LENGTH} bytes")


def _verify(body: bytes, signature: str | None, secret: bytes) -> None:
    _check_secret(secret)
    signatures.check(body, signature, secret, signatures.SMS_RECEIPT_SIGNATURE_HEADER, "receipt")


def _parse_receipt_body(body: bytes) -> dict[str, Any]:
    """The receipt's fields, or InvalidInput listing everything wrong."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(
            "the receipt body is malformed",
            [{"field": "body", "message": "must be a JSON object in UTF-8"}],
        ) from None
    if not isinstance(document, dict):
        raise InvalidInput(
            "the receipt body is malformed",
            [{"field": "body", "message": "must be a JSON object"}],
        )
    problems = []
    if "id" not in document:
        problems.append({"field": "id", "message": "is required"})
    elif not isinstance(document["id"], str) or not document["id"]:
        problems.append({"field": "id", "message": "must be a non-empty string"})
    if "status" not in document:
        problems.append({"field": "status", "message": "is required"})
    elif document["status"] not in RECEIPT_STATUSES:
        problems.append(
            {"field": "status", "message": f"must be one of: {', '.join(RECEIPT_STATUSES)}"}
        )
    for field in ("reference", "error", "at"):
        value = document.get(field)
        if value is not None and not isinstance(value, str):
            problems.append({"field": field, "message": "must be a string or null"})
    if problems:
        raise InvalidInput("the receipt body is malformed", problems)
    return document


# --- configuration ---------------------------------------------------------


@dataclass(frozen=True)
class SmsSettings:
    url: str
    api_key: str | None
    sender_id: str
    timeout_seconds: float
    attempts: int
    receipt_secret: bytes | None  # None: receipts are not accepted

    def __repr__(self) -> str:
        # The key and the secret stay out of logs and tracebacks.
        return (
            f"SmsSettings(url={self.url!r}, sender_id={self.sender_id!r}, "
            f"timeout_seconds={self.timeout_seconds!r}, attempts={self.attempts!r})"
        )

    @classmethod
    def from_environment(cls) -> SmsSettings | None:
        """The settings, or None when SMS is not configured (KSMART_SMS_URL
        unset). ConfigurationProblems (a ValueError) names every problem."""
        url = env(SMS_URL_ENV, "")
        if not url:
            return None
        problems = []
        if not url.startswith(("http://", "https://")):
            problems.append(f"{SMS_URL_ENV} must be an http:// or https:// URL")
        sender_id = env(SMS_SENDER_ID_ENV, DEFAULT_SENDER_ID)
        if not _is_sender_id(sender_id):
            problems.append(
                f"{SMS_SENDER_ID_ENV} must be 1 to 11 letters and digits,"
                " or a phone number of up to 15 digits"
            )
        timeout_seconds = positive_seconds(SMS_TIMEOUT_ENV, "10", problems)
        attempts = whole_number(SMS_ATTEMPTS_ENV, "3", 1, 10, problems)
        receipt_secret = _receipt_secret(problems)
        if problems:
            raise ConfigurationProblems(problems)
        return cls(
            url=url,
            api_key=env(SMS_API_KEY_ENV, "") or None,
            sender_id=sender_id,
            timeout_seconds=timeout_seconds,
            attempts=attempts,
            receipt_secret=receipt_secret,
        )

    def provider(self) -> HttpSmsProvider:
        return HttpSmsProvider(
            self.url,
            self.api_key,
            self.sender_id,
            timeout_seconds=self.timeout_seconds,
            attempts=self.attempts,
        )


def receipt_secret_from_environment() -> bytes | None:
    """KSMART_SMS_RECEIPT_SECRET as bytes, or None when unset (receipts are
    then refused). Readable without the rest of the SMS settings."""
    problems: list[str] = []
    secret = _receipt_secret(problems)
    if problems:
        raise ConfigurationProblems(problems)
    return secret


def _receipt_secret(problems: list[str]) -> bytes | None:
    secret = env(SMS_RECEIPT_SECRET_ENV, "")
    if not secret:
        return None
    if len(secret) < MIN_SECRET_LENGTH:
        problems.append(
            f"{SMS_RECEIPT_SECRET_ENV} must be at least {MIN_SECRET_LENGTH} characters"
            f" (it has {len(secret)}); generate one with"
            " `python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
        return None
    return secret.encode("utf-8")


def _is_sender_id(sender_id: str) -> bool:
    # Operators accept alphanumeric sender ids of up to 11 characters, or a
    # number of up to 15 digits; anything else is replaced or refused.
    if sender_id.isascii() and sender_id.isalnum() and len(sender_id) <= 11:
        return True
    digits = sender_id.removeprefix("+")
    return digits.isascii() and digits.isdigit() and len(digits) <= 15
