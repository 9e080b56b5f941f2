"""Which key signs tokens, and which public keys the gateway should trust.

Production gives the key in KSMART_IDENTITY_SIGNING_KEY (an Ed25519 private key
in PEM, from a secret store): it is never written to the database. Without it
(a fresh developer machine) the service keeps its keys in `signing_keys`,
generating the first one on first use, so no secret needs to live in the repo.

A key is trusted only with the deployment key root's endorsement
(ksmart_common.key_anchor, KSMART_KEY_ROOT_PUBLIC): a row this service's
role could insert proves nothing. Only endorsed keys are published and sign;
an environment key is recorded (its public half only) to carry its
endorsement.

Rotation with stored keys: `rotate_signing_key` adds a newer key, which signs
from then on once endorsed; the older ones stay in the JWKS, so tokens they
signed keep verifying until they expire; then `retire_signing_key` drops an
old key from the JWKS and destroys its private half. The gateway refreshes
its keys every KSMART_TOKEN_KEYS_REFRESH_SECONDS, so a retired key is refused
everywhere within that time. When an operator moves from stored keys to an
environment key, the stored keys stay published until retired, for the same
reason.

The key store itself is the kernel's (ksmart_common.keystore), shared with
the applications service's certificate keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ksmart_common.key_anchor import TOKEN
from ksmart_common.keystore import KeyStore, SigningKey
from ksmart_identity.config import SIGNING_KEY_ENV

__all__ = ["SigningKey", "active_signing_key", "jwks", "retire_signing_key", "rotate_signing_key"]

# Tokens live minutes: a replaced environment key need not stay published.
TOKEN_KEYS = KeyStore(
    "signing_keys", SIGNING_KEY_ENV, retirable=True, records_environment_key=False, purpose=TOKEN
)


def active_signing_key(engine: sa.Engine, environ: Mapping[str, str] | None = None) -> SigningKey:
    """The key that signs new tokens: the environment's, else the newest
    un-retired stored key, else a new stored key."""
    return TOKEN_KEYS.active_key(engine, environ)


def rotate_signing_key(engine: sa.Engine) -> SigningKey:
    """Store a new key, which signs from now on; older keys still verify."""
    return TOKEN_KEYS.rotate(engine)


def retire_signing_key(engine: sa.Engine, kid: str, now: datetime) -> bool:
    """Stop publishing a stored key and destroy its private half; tokens it
    signed stop verifying once the gateway refreshes its keys. Returns False
    if no such un-retired key."""
    return TOKEN_KEYS.retire(engine, kid, now)


def jwks(engine: sa.Engine, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every public key a valid token may be signed with, the active one first."""
    return TOKEN_KEYS.jwks(engine, environ)
