"""Who is calling: verify an access token and turn it into a Principal.

Tokens are JWTs the identity service signs with Ed25519 (ksmart_identity.tokens).
The gateway holds only public keys (the identity service's JWKS), so nothing
here can mint a token. Verification is deliberately narrow:

- only the EdDSA algorithm, checked before any key is chosen, so "alg": "none"
  and the classic HS256-with-the-public-key forgery are refused outright;
- the key is picked by the header's kid from the JWKS (several keys may be
  published during a rotation);
- exp, iat, sub, aud ("ksmart") and iss ("ksmart-identity") are required.

Every failure is Unauthenticated (HTTP 401) with a detail that says what was
wrong with the token, never anything about the keys.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ksmart_common import ed25519
from ksmart_common.actor_assertions import ActingAs
from ksmart_common.errors import Unauthenticated
from ksmart_common.key_anchor import TOKEN, KeyAnchor

# The contract with ksmart_identity.tokens (a test checks the two agree).
ISSUER = "ksmart-identity"
AUDIENCE = "ksmart"
ALGORITHM = "EdDSA"
# `sid`: every token belongs to a session, so every token can be revoked.
REQUIRED_CLAIMS = ("exp", "iat", "sub", "aud", "iss", "preferred_username", "roles", "sid")

# Tolerated clock difference between the identity service's host and ours.
DEFAULT_LEEWAY_SECONDS = 30

MAX_CACHED_TOKENS = 10_000

# RFC 6750 section 2.1: "Bearer" then one b64token.
_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, as the token describes them."""

    user_id: str
    username: str
    roles: tuple[str, ...]
    local_body: str | None
    # The session the token belongs to (revoking it ends the token) and the
    # wards an official's jurisdiction is limited to (empty: the whole body).
    session_id: str | None = None
    wards: tuple[int, ...] = ()

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def as_actor(self) -> ActingAs:
        """Who acts, as services receive it over RPC (and record it in
        events): `call` signs it for the one method it is sent to."""
        return ActingAs(
            {
                "actor_id": self.user_id,
                "roles": list(self.roles),
                "local_body": self.local_body,
                "wards": list(self.wards),
            }
        )


def bearer_token(authorization_header: str | None) -> str:
    """The token from an `Authorization: Bearer <token>` header."""
    if authorization_header is None or not authorization_header.strip():
        raise Unauthenticated("an 'Authorization: Bearer <token>' header is required")
    match = _BEARER.match(authorization_header.strip())
    if match is None:
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return match.group(1)


class TokenVerifier:
    def __init__(
        self,
        public_keys: Mapping[str, Ed25519PublicKey],
        leeway_seconds: float = DEFAULT_LEEWAY_SECONDS,
    ) -> None:
        self._public_keys = dict(public_keys)
        self._leeway_seconds = leeway_seconds
        # Clients send the same token with every request for its lifetime;
        # checking its signature once saves an Ed25519 verification per call.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    @classmethod
    def from_jwks(
        cls,
        jwks: Mapping[str, Any],
        leeway_seconds: float = DEFAULT_LEEWAY_SECONDS,
        anchor: KeyAnchor | None = None,
    ) -> TokenVerifier:
        """Build from a JWKS ({"keys": [...]}), as the identity service's
        `jwks` RPC returns it. Keys this verifier could never use (not an
        Ed25519 signing key, or without a kid) are skipped, as JWKS clients do;
        a malformed Ed25519 key is an error. With an `anchor` (the gateway
        always gives one: ksmart_gateway.token_keys), a key without the
        root's endorsement for tokens is skipped too."""
        keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not isinstance(keys, list):
            raise ValueError("a JWKS must be an object with a 'keys' list")
        public_keys = {}
        for jwk in keys:
            if _usable(jwk) and (anchor is None or anchor.endorses(TOKEN, jwk)):
                public_keys[jwk["kid"]] = ed25519.public_key_from_jwk(jwk)
        return cls(public_keys, leeway_seconds)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._public_keys)

    def knows_key_of(self, token: str) -> bool:
        """Whether the token names a key this verifier holds (a malformed
        token counts as known: fetching keys again would not help it)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return True
        return kid in self._public_keys

    def verify(self, token: str) -> Principal:
        """The Principal the token names, or Unauthenticated saying why not."""
        if not isinstance(token, str) or not token:
            raise Unauthenticated("an access token is required")
        cached = self._verified.get(token)
        if cached is not None and time.time() < cached[1] + self._leeway_seconds:
            return cached[0]
        principal, expires_at = self._verify_signed(token)
        self._verified[token] = (principal, expires_at)
        if len(self._verified) > MAX_CACHED_TOKENS:
            self._verified.popitem(last=False)
        return principal

    def _verify_signed(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the access token is malformed") from None
        algorithm = header.get("alg")
        if algorithm != ALGORITHM:
            raise Unauthenticated(
                f"access tokens signed with {algorithm!r} are not accepted (only {ALGORITHM})"
            )
        kid = header.get("kid")
        public_key = self._public_keys.get(kid) if isinstance(kid, str) else None
        if public_key is None:
            raise Unauthenticated("the access token was signed with an unknown key")
        claims = self._decode(token, public_key)
        return _principal(claims), float(claims["exp"])

    def _decode(self, token: str, public_key: Ed25519PublicKey) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                public_key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self._leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            detail = "the access token has expired"
        except jwt.InvalidSignatureError:
            detail = "the access token's signature is invalid"
        except jwt.MissingRequiredClaimError as error:
            detail = f"the access token lacks the {error.claim!r} claim"
        except jwt.InvalidAudienceError:
            detail = f"the access token is not meant for {AUDIENCE!r}"
        except jwt.InvalidIssuerError:
            detail = f"the access token was not issued by {ISSUER!r}"
        except jwt.ImmatureSignatureError:
            detail = "the access token is not valid yet (issued in the future)"
        except jwt.PyJWTError as error:
            detail = f"the access token is invalid: {error}"
        raise Unauthenticated(detail)


def _usable(jwk: Any) -> bool:
    return (
        isinstance(jwk, Mapping)
        and jwk.get("kty") == "OKP"
        and jwk.get("crv") == "Ed25519"
        and jwk.get("use", "sig") == "sig"
        and jwk.get("alg", ALGORITHM) == ALGORITHM
        and isinstance(jwk.get("kid"), str)
    )


def _principal(claims: Mapping[str, Any]) -> Principal:
    username = claims.get("preferred_username")
    roles = claims.get("roles")
    local_body = claims.get("local_body")
    session_id = claims.get("sid")
    wards = claims.get("wards", [])
    well_formed = (
        isinstance(claims["sub"], str)
        and claims["sub"] != ""
        and isinstance(username, str)
        and isinstance(roles, list)
        and all(isinstance(role, str) for role in roles)
        and (local_body is None or isinstance(local_body, str))
        and isinstance(session_id, str)
        and isinstance(wards, list)
        and all(isinstance(ward, int) and not isinstance(ward, bool) for ward in wards)
    )
    if not well_formed:
        raise Unauthenticated("the access token's claims are malformed")
    return Principal(claims["sub"], username, tuple(roles), local_body, session_id, tuple(wards))
