"""The certificate keys: which key signs certificates, and every public key
that ever did.

Production gives the key in KSMART_CERTIFICATE_SIGNING_KEY (Ed25519 PEM; a
literal "\\n" reads as a newline, for one-line env files); its public half is
recorded in `certificate_keys` the first time it is used. Without it, the
newest stored key signs, the first one generated on first use. `rotate`
stores a newer key. No key is ever dropped from the published keys: a
certificate must verify for as long as it is kept. The store itself is the
kernel's (ksmart_common.keystore), shared with identity's token keys.

A key is trusted only with the deployment key root's endorsement
(ksmart_common.key_anchor, KSMART_KEY_ROOT_PUBLIC): this service's role can
insert rows into certificate_keys, so a row alone proves nothing. Only
endorsed keys are published, sign, and verify certificates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ksmart_common.domain.certificate import (
    public_keys_from_jwks,
    sign_certificate,
    verify_certificate,
)
from ksmart_common.key_anchor import CERTIFICATE
from ksmart_common.keystore import KeyStore, SigningKey

SIGNING_KEY_ENV = "KSMART_CERTIFICATE_SIGNING_KEY"

# The table of certificate keys, for a migration. Keys are never retired. A
# key given in the environment is recorded here with its public half only
# (private_key_pem NULL), so what it signed still verifies after the operator
# replaces it. The owning service's role needs SELECT and INSERT, nothing more.
CERTIFICATE_KEYS_DDL = """
CREATE TABLE certificate_keys (
    kid text PRIMARY KEY,
    -- NULL for a key given in KSMART_CERTIFICATE_SIGNING_KEY: never stored.
    private_key_pem text NULL,
    public_jwk jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON certificate_keys FROM PUBLIC;
"""


def sign(key: SigningKey, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The signed certificate document of `payload`, signed with `key`."""
    return sign_certificate(payload, key.private_key, key.kid)


def certificate_key_store() -> KeyStore:
    """The kernel's key store over certificate_keys, anchored for certificates."""
    return KeyStore(
        "certificate_keys",
        SIGNING_KEY_ENV,
        retirable=False,
        records_environment_key=True,
        purpose=CERTIFICATE,
    )


class CertificateKeys:
    """The certificate key store, with the published keys kept in memory for
    checking certificates. `environ` is read for the environment key and the
    key root (a test passes its own mapping; None reads os.environ)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._store = certificate_key_store()
        self._public_keys: dict[str, Ed25519PublicKey] = {}

    def environment_key(self) -> SigningKey | None:
        return self._store.environment_key(self._environ)

    def active_key(self, engine: sa.Engine) -> SigningKey:
        """The key that signs new certificates."""
        return self._store.active_key(engine, self._environ)

    def rotate(self, engine: sa.Engine) -> SigningKey:
        """Store a new key, which signs from now on once endorsed (unless the
        environment gives one); certificates signed before keep verifying."""
        return self._store.rotate(engine)

    def public_jwks(self, engine: sa.Engine) -> dict[str, Any]:
        """Every endorsed key a genuine certificate may be signed with, the
        active one first, each with its endorsement."""
        return self._store.jwks(engine, self._environ)

    def problems(self, document: Any, engine: sa.Engine) -> list[str]:
        """verify_certificate against every key that ever signed. Keys are
        only ever added, so the published keys are read once and again only
        when a certificate names a kid not seen yet: a check costs no query."""
        kid = document.get("payload", {}).get("kid") if isinstance(document, Mapping) else None
        if not self._public_keys or (isinstance(kid, str) and kid not in self._public_keys):
            self._public_keys = public_keys_from_jwks(self.public_jwks(engine))
        return verify_certificate(document, self._public_keys)
