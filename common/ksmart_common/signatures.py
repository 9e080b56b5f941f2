"""Signed callback bodies (a payment provider's, an SMS provider's delivery
receipts): `sha256=<hex HMAC-SHA256 of the raw body>` in a header, checked
in constant time before anything in the body is believed."""

from __future__ import annotations

import hashlib
import hmac

from ksmart_common.errors import Unauthenticated

SIGNATURE_PREFIX = "sha256="

# The headers the signatures arrive in, named here because both the gateway
# (which receives the callbacks) and the service that checks them use them.
PAYMENT_SIGNATURE_HEADER = "X-Payment-Signature"
SMS_RECEIPT_SIGNATURE_HEADER = "X-Sms-Signature"


def sign(body: bytes, secret: bytes) -> str:
    return SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def check(body: bytes, signature: str | None, secret: bytes, header: str, what: str) -> None:
    """Unauthenticated unless `signature` (the `header`'s value) signs `body`;
    `what` names the callback in the refusal ("callback", "receipt")."""
    if not signature:
        raise Unauthenticated(f"the {what} has no {header} header")
    if not signature.startswith(SIGNATURE_PREFIX):
        raise Unauthenticated(f"{header} must start with {SIGNATURE_PREFIX}")
    # Compared as bytes: compare_digest refuses non-ASCII text, which an
    # attacker could send to turn a 401 into a 500.
    if not hmac.compare_digest(signature.encode("utf-8"), sign(body, secret).encode("ascii")):
        raise Unauthenticated(f"the {what}'s signature does not match its body")
