"""Ed25519 keys as the platform keeps and publishes them: one home for the
identity service's token keys and the certificate keys.

A key's id (kid) is derived from the public key itself, so the same key has
the same kid wherever it is loaded (environment or database). Public keys
are published as OKP JWKs (RFC 8037).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ALGORITHM = "EdDSA"


def b64url(raw: bytes) -> str:
    """Base64url without padding: how keys (a JWK's x), endorsements and
    signatures are written."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """The bytes of a base64url text, padded or not; ValueError if it is not one."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("not base64url") from error


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_to_pem(private_key: Ed25519PrivateKey) -> str:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def private_key_from_pem(pem: str) -> Ed25519PrivateKey:
    """Load a PEM private key, refusing any type but Ed25519."""
    private_key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ValueError(f"expected an Ed25519 private key, got {type(private_key).__name__}")
    return private_key


def raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public_bytes(public_key)).hexdigest()[:16]


def public_jwk(private_key: Ed25519PrivateKey, kid: str) -> dict[str, str]:
    """The public half as an OKP JWK, as published in a JWKS."""
    x = b64url(raw_public_bytes(private_key.public_key()))
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def public_key_from_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    """The public key of an OKP JWK, built from "x" alone (a "d", a private
    part, is ignored, never used); ValueError if it is not a valid one."""
    x = jwk.get("x")
    if not isinstance(x, str):
        raise ValueError(f"JWK {jwk.get('kid')!r} has no 'x'")
    try:
        return Ed25519PublicKey.from_public_bytes(from_b64url(x))
    except ValueError as error:
        raise ValueError(f"JWK {jwk.get('kid')!r} is not a valid Ed25519 public key") from error
