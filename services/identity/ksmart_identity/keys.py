"""Which key signs tokens, and which public keys the gateway should trust.

Production gives the key in KSMART_IDENTITY_SIGNING_KEY (an Ed25519 private key
in PEM, from a secret store): it is never written to the database. Without it
(a fresh developer machine) the service keeps its keys in `signing_keys`,
generating the first one on first use, so no secret needs to live in the repo.

Rotation with stored keys: `rotate_signing_key` adds a newer key, which signs
from then on; the older ones stay in the JWKS, so tokens they signed keep
verifying until they expire; then `retire_signing_key` drops an old key from
the JWKS. When an operator moves from stored keys to an environment key, the
stored keys stay published until retired, for the same reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ksmart_common import ed25519
from ksmart_identity.config import signing_key_pem

# Serialises "no key yet, create one" across replicas starting together, so a
# fresh database gets one first key, not one per replica. Advisory locks are
# per database and need no privilege. Any fixed bigint will do.
_FIRST_KEY_LOCK = int.from_bytes(b"ksm-idk", "big")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey) -> SigningKey:
        return cls(ed25519.key_id(private_key.public_key()), private_key)

    @property
    def public_jwk(self) -> dict[str, str]:
        return ed25519.public_jwk(self.private_key, self.kid)


def active_signing_key(engine: sa.Engine, environ: Mapping[str, str] | None = None) -> SigningKey:
    """The key that signs new tokens: the environment's, else the newest
    un-retired stored key, else a new stored key."""
    pem = signing_key_pem(environ)
    if pem is not None:
        return SigningKey.from_private_key(ed25519.private_key_from_pem(pem))
    with engine.connect() as conn:
        stored = _newest_stored_key(conn)
    if stored is not None:
        return stored
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": _FIRST_KEY_LOCK})
        # Another replica may have created it while we waited for the lock.
        return _newest_stored_key(conn) or _store_new_key(conn)


def rotate_signing_key(engine: sa.Engine) -> SigningKey:
    """Store a new key, which signs from now on; older keys still verify."""
    with engine.begin() as conn:
        return _store_new_key(conn)


def retire_signing_key(engine: sa.Engine, kid: str, now: datetime) -> bool:
    """Stop publishing a stored key; tokens it signed stop verifying once the
    gateway refreshes its JWKS. Returns False if no such un-retired key."""
    with engine.begin() as conn:
        result = conn.execute(
            sa.text(
                "UPDATE signing_keys SET retired_at = :now WHERE kid = :kid AND retired_at IS NULL"
            ),
            {"kid": kid, "now": now},
        )
    return result.rowcount == 1


def jwks(engine: sa.Engine, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every public key a valid token may be signed with, the active one first.

    Makes sure the active key exists first, so a JWKS fetched before the first
    sign-in already holds the key that sign-in will use.
    """
    active = active_signing_key(engine, environ)
    keys = {active.kid: active.public_jwk}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT kid, public_jwk FROM signing_keys WHERE retired_at IS NULL "
                "ORDER BY created_at DESC, kid"
            )
        )
        for kid, jwk in rows:
            keys.setdefault(kid, jwk)
    return {"keys": list(keys.values())}


def _newest_stored_key(conn: sa.Connection) -> SigningKey | None:
    row = conn.execute(
        sa.text(
            "SELECT kid, private_key_pem FROM signing_keys WHERE retired_at IS NULL "
            "ORDER BY created_at DESC, kid LIMIT 1"
        )
    ).one_or_none()
    if row is None:
        return None
    return SigningKey(row.kid, ed25519.private_key_from_pem(row.private_key_pem))


def _store_new_key(conn: sa.Connection) -> SigningKey:
    key = SigningKey.from_private_key(ed25519.generate_private_key())
    conn.execute(
        sa.text(
            "INSERT INTO signing_keys (kid, private_key_pem, public_jwk, created_at) "
            "VALUES (:kid, :pem, CAST(:jwk AS jsonb), clock_timestamp())"
        ),
        {
            "kid": key.kid,
            "pem": ed25519.private_key_to_pem(key.private_key),
            "jwk": json.dumps(key.public_jwk),
        },
    )
    return key
