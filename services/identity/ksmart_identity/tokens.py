"""Access tokens: short-lived JWTs signed with Ed25519 ("EdDSA").

Ed25519 because a verifier needs only the public key (the gateway holds no
secret that could mint tokens), signatures are small and fast, and there are no
parameters to get wrong. The claims are the contract with the gateway
(ksmart_gateway.auth), which checks every one of them.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ISSUER = "ksmart-identity"
AUDIENCE = "ksmart"
ALGORITHM = "EdDSA"


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


def _raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """A kid derived from the key itself, so the same key always has the same
    kid wherever it is loaded (environment or database)."""
    return hashlib.sha256(_raw_public_bytes(public_key)).hexdigest()[:16]


def public_jwk(private_key: Ed25519PrivateKey, kid: str) -> dict[str, str]:
    """The public half as an OKP JWK (RFC 8037), as published in the JWKS."""
    raw = _raw_public_bytes(private_key.public_key())
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def access_token_claims(
    user: Mapping[str, Any], ttl_seconds: int, now: datetime, session_id: str | None = None
) -> dict[str, Any]:
    """The claims of an access token; `user` has user_id, username, roles,
    local_body and wards (the dict ksmart_identity.users returns);
    `session_id` names the session whose revocation ends the token."""
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    if now.tzinfo is None:
        # A naive datetime would be read as local time and shift iat/exp.
        raise ValueError("now must be timezone-aware")
    roles: Sequence[str] = user["roles"]
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user["user_id"]),
        "preferred_username": user["username"],
        "roles": list(roles),
        "local_body": user.get("local_body"),
        "wards": list(user.get("wards") or []),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
        # Unique per token, for logs and audits.
        "jti": uuid.uuid4().hex,
        **({"sid": session_id} if session_id else {}),
    }


def issue_access_token(
    private_key: Ed25519PrivateKey,
    kid: str,
    user: Mapping[str, Any],
    ttl_seconds: int,
    now: datetime,
    session_id: str | None = None,
) -> str:
    return jwt.encode(
        access_token_claims(user, ttl_seconds, now, session_id),
        private_key,
        algorithm=ALGORITHM,
        headers={"kid": kid},
    )
