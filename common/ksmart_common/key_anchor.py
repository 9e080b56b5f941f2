"""The deployment's key root: which token, certificate and event keys are trusted.

A service keeps its signing keys in its own table, and its database role
can write that table; so a row there proves nothing. A key is trusted only
when the deployment's root key has endorsed it: an Ed25519 signature over
the statement "this key (kid, x) signs <purpose>". The root's public half is
pinned in the deployment's configuration (KSMART_KEY_ROOT_PUBLIC, from the
Secret); its private half stays in the operator's own secret store and
signs on the operator's machine (`ksmart-admin endorse-keys`), never on the
platform's pods. A verifier (the gateway for tokens, the applications
service and anyone offline for certificates) checks each published key's
endorsement against the pinned root and ignores a key without a valid one.
As Sigstore's TUF root and the Go checksum database's pinned key do, the
trust starts from a key the platform's own processes cannot use.

The statement is canonical JSON (ksmart_common.canonical):
{"kid": ..., "purpose": ..., "statement": "ksmart-key-endorsement/v1",
"x": ...}, x the raw public key in base64url as in the key's JWK; the
endorsement is the root's signature over it in base64url, published as the
JWK's `endorsement` member. The kid is checked to be the key's own hash.

Pure: nothing here reads a table, a file, the environment or the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ksmart_common import ed25519
from ksmart_common.canonical import canonical_json

ROOT_PUBLIC_KEY_ENV = "KSMART_KEY_ROOT_PUBLIC"
ENDORSEMENT_MEMBER = "endorsement"
STATEMENT = "ksmart-key-endorsement/v1"
# What a key may be endorsed for: one root serves them all, and a key
# endorsed for one purpose is not trusted for another.
TOKEN = "token"
CERTIFICATE = "certificate"
# The applications service's event-signing key (ksmart_common.event_signatures).
EVENT = "event"


def statement(purpose: str, jwk: Mapping[str, Any]) -> bytes:
    """The bytes the root signs to endorse the key of `jwk` for `purpose`."""
    return canonical_json(
        {"kid": jwk.get("kid"), "purpose": purpose, "statement": STATEMENT, "x": jwk.get("x")}
    )


def endorse(root: Ed25519PrivateKey, purpose: str, jwk: Mapping[str, Any]) -> str:
    """The root's endorsement of the key of `jwk` for `purpose`; ValueError
    if the JWK is not an Ed25519 public key whose kid is its own."""
    if ed25519.key_id(ed25519.public_key_from_jwk(jwk)) != jwk.get("kid"):
        raise ValueError(f"JWK {jwk.get('kid')!r}: the kid is not the key's own")
    return ed25519.b64url(root.sign(statement(purpose, jwk)))


def root_public_text(root: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The root's public half as KSMART_KEY_ROOT_PUBLIC holds it."""
    public = root.public_key() if isinstance(root, Ed25519PrivateKey) else root
    return ed25519.b64url(ed25519.raw_public_bytes(public))


@dataclass(frozen=True)
class KeyAnchor:
    """The pinned root public key, and the checks made with it."""

    root: Ed25519PublicKey

    @classmethod
    def from_text(cls, text: str) -> KeyAnchor:
        raw = ed25519.from_b64url(text.strip())
        if len(raw) != 32:
            raise ValueError(f"{ROOT_PUBLIC_KEY_ENV} must be 32 bytes in base64url")
        return cls(Ed25519PublicKey.from_public_bytes(raw))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> KeyAnchor | None:
        """The pinned root in `environ` (os.environ, or a test's mapping: this
        module reads nothing itself, so the pure domain may use it), or None
        when none is configured (then no key is trusted: a verifier fails
        closed). A malformed value is a ValueError."""
        text = environ.get(ROOT_PUBLIC_KEY_ENV, "").strip()
        return cls.from_text(text) if text else None

    def endorses(self, purpose: str, jwk: Mapping[str, Any]) -> bool:
        """Whether `jwk` carries the root's endorsement for `purpose`."""
        endorsement = jwk.get(ENDORSEMENT_MEMBER)
        if not isinstance(endorsement, str) or not isinstance(jwk.get("x"), str):
            return False
        try:
            public_key = ed25519.public_key_from_jwk(jwk)
            signature = ed25519.from_b64url(endorsement)
        except ValueError:
            return False
        if ed25519.key_id(public_key) != jwk.get("kid"):
            return False
        try:
            self.root.verify(signature, statement(purpose, jwk))
        except InvalidSignature:
            return False
        return True

    def endorsed(self, purpose: str, jwks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The JWKs the root endorses for `purpose`, in their order."""
        return [dict(jwk) for jwk in jwks if self.endorses(purpose, jwk)]


def public_keys(
    jwks: Mapping[str, Any], purpose: str, anchor: KeyAnchor | None
) -> dict[str, Ed25519PublicKey]:
    """kid -> key for each Ed25519 key of a JWKS (others are ignored); with
    an `anchor`, only the keys it endorses for `purpose` count."""
    found: dict[str, Ed25519PublicKey] = {}
    for jwk in jwks.get("keys", ()):
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "kid" not in jwk:
            continue
        if anchor is not None and not anchor.endorses(purpose, jwk):
            continue
        try:
            found[jwk["kid"]] = ed25519.public_key_from_jwk(jwk)
        except ValueError:
            continue
    return found
