"""The event-signing key: which key signs the events this service appends,
and the public keys an auditor checks them with (ksmart_common.event_signatures
says why events are signed).

The key is given in KSMART_EVENT_SIGNING_KEY (Ed25519 PEM, from the
Secret; a literal "\\n" reads as a newline) and nowhere else: `event_keys`
holds public halves only, recorded the first time a key is used so that it
can carry the deployment root's endorsement (`ksmart-admin endorse-keys
event KID`) and stays published after the key is replaced, since the events
it signed are kept for ever. Until its key is endorsed (or without one) the
service refuses to append (ServiceUnavailable, 503 at the gateway): an
event signed by a key no auditor trusts would be a finding for ever.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ksmart_common.event_signatures import SIGNING_KEY_ENV, EventSigner
from ksmart_common.key_anchor import EVENT
from ksmart_common.keystore import KeyStore

# Public halves only: the CHECK refuses a private key, whoever inserts it.
EVENT_KEYS_DDL = """
CREATE TABLE event_keys (
    kid text PRIMARY KEY,
    private_key_pem text NULL CHECK (private_key_pem IS NULL),
    public_jwk jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    endorsement text NULL
);

REVOKE ALL ON event_keys FROM PUBLIC;
"""


def event_key_store() -> KeyStore:
    """The kernel's key store over event_keys: environment keys only,
    anchored for the purpose "event"."""
    return KeyStore(
        "event_keys",
        SIGNING_KEY_ENV,
        retirable=False,
        records_environment_key=True,
        purpose=EVENT,
        environment_only=True,
    )


class EventKeys:
    """The signer the event store asks for on every append, and the
    published keys. `environ`: as CertificateKeys takes it."""

    def __init__(self, engine: sa.Engine, environ: Mapping[str, str] | None = None) -> None:
        self._engine = engine
        self._environ = environ
        self._store = event_key_store()
        self._signer: EventSigner | None = None
        self._lock = threading.Lock()

    def signer(self) -> EventSigner:
        """The endorsed environment key, or ServiceUnavailable naming what
        is missing. Once found it is kept: the environment does not change
        under a running process, and an endorsement never stops being valid."""
        if self._signer is None:
            with self._lock:
                if self._signer is None:
                    key = self._store.active_key(self._engine, self._environ)
                    self._signer = EventSigner(key.kid, key.private_key)
        return self._signer

    def public_jwks(self) -> dict[str, Any]:
        """Every endorsed key an event may be signed with, each with its
        endorsement, the one signing now first."""
        return self._store.jwks(self._engine, self._environ)
