"""Events signed by their one writer, so an insider cannot forge one.

A chain hash is unkeyed: anyone who can INSERT into `events` (the
applications role, or the owner) can append an event whose hash and link
are right, and the checkpointer, which believes the table, makes it the
next leaf of the transparency log. So the applications service, the
store's only writer, also signs each event it appends with an Ed25519 key
that lives only in its Secret (KSMART_EVENT_SIGNING_KEY), never in the
database. The key is trusted only with the deployment key root's
endorsement for the purpose "event" (ksmart_common.key_anchor), and the
endorsed keys are published at GET /api/v1/event-keys.

What is signed: the event's stored hash, which already commits to its
content, its place in its stream (prev_hash, version) and in the log
(global position), with the signing key's id and a context string:

    b"ksmart-event-signature/v1\\n" + kid + b"\\n" + hash (64 hex digits)

stored with the row (events.signature) and carried in the envelope as the
text "<kid>:<base64url signature>" (the key id is 16 hex digits, so the
first colon ends it). The signature is not part of what the hash covers:
it seals the hash, not the other way round.

Pure: nothing here reads a table, the environment or the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ksmart_common import ed25519

CONTEXT = b"ksmart-event-signature/v1\n"
SIGNING_KEY_ENV = "KSMART_EVENT_SIGNING_KEY"
SIGNATURE_BYTES = 64


def signed_bytes(kid: str, event_hash: str) -> bytes:
    """What the signature covers: the context, the key's id and the hash."""
    return CONTEXT + kid.encode("ascii") + b"\n" + event_hash.encode("ascii")


@dataclass(frozen=True)
class EventSigner:
    """Signs events' hashes with one key (the applications service's)."""

    kid: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def of(cls, private_key: Ed25519PrivateKey) -> EventSigner:
        return cls(ed25519.key_id(private_key.public_key()), private_key)

    def sign(self, event_hash: str) -> str:
        """The signature text stored with the event of this hash."""
        signature = self.private_key.sign(signed_bytes(self.kid, event_hash))
        return f"{self.kid}:{ed25519.b64url(signature)}"


def parse(signature: str) -> tuple[str, bytes]:
    """(kid, raw signature) of a signature text; ValueError if malformed."""
    kid, colon, encoded = signature.partition(":")
    if not colon or not kid or not encoded:
        raise ValueError("not <kid>:<signature>")
    try:
        kid.encode("ascii")
        raw = ed25519.from_b64url(encoded)
    except (ValueError, UnicodeEncodeError) as error:
        raise ValueError("the signature is not base64url") from error
    if len(raw) != SIGNATURE_BYTES:
        raise ValueError(f"an Ed25519 signature is {SIGNATURE_BYTES} bytes, not {len(raw)}")
    return kid, raw


def why_not_signed(
    signature: str | None, event_hash: str, keys: Mapping[str, Ed25519PublicKey]
) -> str | None:
    """Why `signature` is not a valid signature of `event_hash` by one of
    `keys` (kid -> the endorsed public keys), or None when it is."""
    if signature is None:
        return "it carries no signature"
    try:
        kid, raw = parse(signature)
    except ValueError as error:
        return f"its signature is malformed ({error})"
    key = keys.get(kid)
    if key is None:
        return f"it is signed by key {kid}, which is not an endorsed event key"
    try:
        key.verify(raw, signed_bytes(kid, event_hash))
    except InvalidSignature:
        return f"its signature by key {kid} does not verify for its hash (mis-signed)"
    return None
