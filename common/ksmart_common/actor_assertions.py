"""Who acts, signed: the actor of a command crosses RPC as a short-lived
assertion, never as a dict a service takes on trust.

Any process holding broker credentials could otherwise publish
`applications.take_action` or `identity.create_staff` naming any actor. So
the actor travels as a compact JWS (a JWT, EdDSA over Ed25519):

- signed by the process that knows who acts: the gateway, from the caller's
  verified access token; or a service forwarding the actor it was itself
  given (the applications service asking the identity service to check a
  counter operator's consent), under its own key and name;
- bound to one call: `aud` is the called service and `rpc` its method, so
  an assertion one service received cannot be replayed to another or to
  another method; it lives ASSERTION_TTL_SECONDS (`exp`), and carries a
  `jti` and the gateway's request id (`rid`) for the logs;
- verified by the called service before the method runs (ksmart_common.rpc),
  against public keys pinned in the deployment's configuration
  (KSMART_ACTOR_PUBLIC_KEYS), never fetched from another service or a table.
  Each RPC method names the signers it accepts (the gateway by default).

An unsigned, expired, mis-signed, wrongly addressed or untrusted assertion
is Unauthenticated: the method never runs, so nothing is written.

`ActingAs` is what a caller hands to `ksmart_common.rpc.call`: call signs it
for the method it is sent to, with the calling process's key
(KSMART_<PROCESS>_ACTOR_KEY, an Ed25519 PEM).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ksmart_common import config, ed25519, key_environment
from ksmart_common.errors import Unauthenticated

ASSERTION_TTL_SECONDS = 60
# Tolerated clock difference between the signer's host and the verifier's.
LEEWAY_SECONDS = 5
TOKEN_TYPE = "ksmart-actor+jwt"
REQUIRED_CLAIMS = ("iss", "aud", "rpc", "sub", "iat", "exp", "jti", "actor")
GATEWAY = "gateway"
# Every process that signs actors: the gateway, and the applications
# service forwarding a counter operator to the identity service.
ACTOR_SIGNERS = (GATEWAY, "applications")
# {"gateway": "<base64url of the raw public key>", "applications": "..."}:
# the signers' public keys, pinned in each service's configuration.
PUBLIC_KEYS_ENV = "KSMART_ACTOR_PUBLIC_KEYS"


def signing_key_env(process: str) -> str:
    """Where a process finds its own private key (PEM)."""
    return f"KSMART_{process.upper()}_ACTOR_KEY"


@dataclass(frozen=True)
class ActingAs:
    """An actor to be sent over RPC, signed by `call` for its one method."""

    actor: Mapping[str, Any]


class ActorSigner:
    def __init__(
        self,
        issuer: str,
        private_key: Ed25519PrivateKey,
        ttl_seconds: int = ASSERTION_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self._private_key = private_key
        self._ttl_seconds = ttl_seconds
        self._clock = clock

    def sign(
        self, actor: Mapping[str, Any], service: str, method: str, request_id: str | None = None
    ) -> str:
        now = int(self._clock())
        claims = {
            "iss": self.issuer,
            "aud": service,
            "rpc": method,
            "sub": str(actor["actor_id"]),
            "actor": dict(actor),
            "iat": now,
            "exp": now + self._ttl_seconds,
            "jti": str(uuid.uuid4()),
            **({"rid": request_id} if request_id else {}),
        }
        return jwt.encode(
            claims, self._private_key, algorithm=ed25519.ALGORITHM, headers={"typ": TOKEN_TYPE}
        )


class ActorVerifier:
    def __init__(
        self,
        public_keys: Mapping[str, Ed25519PublicKey],
        leeway_seconds: float = LEEWAY_SECONDS,
    ) -> None:
        self._public_keys = dict(public_keys)
        self._leeway_seconds = leeway_seconds

    @classmethod
    def from_config(cls, text: str) -> ActorVerifier:
        """From KSMART_ACTOR_PUBLIC_KEYS' JSON: signer name -> raw key, base64url."""
        document = json.loads(text) if text.strip() else {}
        if not isinstance(document, dict):
            raise ValueError(f"{PUBLIC_KEYS_ENV} must be a JSON object: signer -> public key")
        keys = {name: ed25519.public_key_from_jwk({"x": x}) for name, x in document.items()}
        return cls(keys)

    def verify(
        self, assertion: Any, service: str, method: str, issuers: Collection[str]
    ) -> dict[str, Any]:
        """The actor the assertion names, if it was signed by one of
        `issuers` for `service`.`method` and has not expired; else
        Unauthenticated saying why (never anything about the keys)."""
        if not isinstance(assertion, str) or not assertion:
            raise Unauthenticated("the actor must come as a signed assertion")
        try:
            header = jwt.get_unverified_header(assertion)
            issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise Unauthenticated("the actor assertion is malformed") from None
        if header.get("alg") != ed25519.ALGORITHM or header.get("typ") != TOKEN_TYPE:
            raise Unauthenticated("the actor assertion is not an EdDSA actor assertion")
        if issuer not in issuers:
            raise Unauthenticated(f"{service}.{method} does not take actors from {issuer!r}")
        public_key = self._public_keys.get(issuer)
        if public_key is None:
            raise Unauthenticated(f"no key is configured for actor assertions of {issuer!r}")
        claims = self._decode(assertion, public_key, service)
        actor = claims["actor"]
        if claims["rpc"] != method:
            raise Unauthenticated(f"the actor assertion is for {claims['rpc']!r}, not {method!r}")
        if not isinstance(actor, dict) or str(actor.get("actor_id")) != claims["sub"]:
            raise Unauthenticated("the actor assertion's claims are malformed")
        return actor

    def _decode(self, assertion: str, public_key: Ed25519PublicKey, service: str) -> dict:
        try:
            return jwt.decode(
                assertion,
                public_key,
                algorithms=[ed25519.ALGORITHM],
                audience=service,
                leeway=self._leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            detail = "the actor assertion has expired"
        except jwt.InvalidSignatureError:
            detail = "the actor assertion's signature is invalid"
        except jwt.InvalidAudienceError:
            detail = f"the actor assertion is not meant for {service!r}"
        except jwt.MissingRequiredClaimError as error:
            detail = f"the actor assertion lacks the {error.claim!r} claim"
        except jwt.PyJWTError as error:
            detail = f"the actor assertion is invalid: {error}"
        raise Unauthenticated(detail)


@cache
def process_signer(process: str) -> ActorSigner | None:
    """The process's own signer, from its environment; None without a key.
    The PEM may come on one line, its newlines written "\\n" (docker
    compose's .env holds one line a variable)."""
    private_key = key_environment.private_key_from_environment(signing_key_env(process))
    return None if private_key is None else ActorSigner(process, private_key)


@cache
def process_verifier() -> ActorVerifier:
    """The pinned keys of every signer this process may trust (none
    configured: every actor is refused)."""
    return ActorVerifier.from_config(config.env(PUBLIC_KEYS_ENV, ""))


def public_key_text(private_key: Ed25519PrivateKey) -> str:
    """A signer's entry in KSMART_ACTOR_PUBLIC_KEYS."""
    return ed25519.b64url(ed25519.raw_public_bytes(private_key.public_key()))
