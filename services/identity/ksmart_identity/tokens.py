"""Access tokens: short-lived JWTs signed with Ed25519 ("EdDSA").

Ed25519 because a verifier needs only the public key (the gateway holds no
secret that could mint tokens), signatures are small and fast, and there are no
parameters to get wrong. The claims are the contract with the gateway
(ksmart_gateway.auth), which checks every one of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ksmart_common import ed25519

ISSUER = "ksmart-identity"
AUDIENCE = "ksmart"
ALGORITHM = ed25519.ALGORITHM


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
