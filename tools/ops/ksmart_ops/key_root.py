"""The deployment's key root on the operator's side (ksmart_common.key_anchor):
endorsing a token, certificate or event key with the root's private key, and the
development root that `make run` and the tests make for themselves.

In production the root's private key never reaches the platform: the
operator keeps it in their own secret store and runs `ksmart-admin
endorse-keys PURPOSE KID... --root-key FILE` on their own machine, naming
each key they mean to trust (never "whatever the table holds": a row an
insider inserted would be endorsed with the rest).

In development the root is made once under the run folder, readable by its
owner only, never in the repository, and every live key of the development
databases is endorsed with it before the platform starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ksmart_common.errors import ServiceUnavailable
from ksmart_common.key_anchor import (
    CERTIFICATE,
    EVENT,
    ROOT_PUBLIC_KEY_ENV,
    TOKEN,
    endorse,
    root_public_text,
)
from ksmart_common.keystore import KeyStore
from ksmart_ops.run_files import development_key

ROOT_KEY_FILE = "key-root.pem"
# The service whose database holds each purpose's keys.
KEY_DATABASES = {TOKEN: "identity", CERTIFICATE: "applications", EVENT: "applications"}


def key_store(purpose: str) -> KeyStore:
    """The store of `purpose`'s keys, as its service keeps it."""
    if purpose == TOKEN:
        from ksmart_identity.keys import TOKEN_KEYS

        return TOKEN_KEYS
    if purpose == CERTIFICATE:
        from ksmart_applications.certificate_keys import certificate_key_store

        return certificate_key_store()
    if purpose == EVENT:
        from ksmart_applications.event_keys import event_key_store

        return event_key_store()
    raise ValueError(f"no keys are endorsed for {purpose!r}")


def endorse_keys(
    root: Ed25519PrivateKey, purpose: str, engine: sa.Engine, kids: Iterable[str]
) -> list[str]:
    """Endorse each named live key for `purpose`; the kids that were not
    live keys of the store (nothing is endorsed for them)."""
    store = key_store(purpose)
    live = {jwk["kid"]: jwk for jwk in store.live_keys(engine)}
    unknown = []
    for kid in kids:
        if kid in live:
            store.endorse(engine, kid, endorse(root, purpose, live[kid]))
        else:
            unknown.append(kid)
    return unknown


def development_root(run_dir: Path) -> Ed25519PrivateKey:
    """The development root, made once under `run_dir`."""
    return development_key(run_dir / ROOT_KEY_FILE)


def key_root_environment(run_dir: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The development root's public half, unless the environment pins its own."""
    environ = os.environ if environ is None else environ
    if environ.get(ROOT_PUBLIC_KEY_ENV):
        return {}
    return {ROOT_PUBLIC_KEY_ENV: root_public_text(development_root(run_dir))}


def anchor_development_keys(
    run_dir: Path, database_urls: Mapping[str, str], environ: Mapping[str, str]
) -> None:
    """Development only: make sure each purpose has a key (the environment's,
    or one stored), and endorse every live key with the development root, so
    a fresh clone signs in and issues certificates with no manual step.
    `database_urls`: service -> URL, for the services whose keys to anchor.
    Does nothing when the environment pins a root of its own."""
    root = development_root(run_dir)
    pinned = environ.get(ROOT_PUBLIC_KEY_ENV)
    if pinned and pinned != root_public_text(root):
        return
    anchored = {**environ, ROOT_PUBLIC_KEY_ENV: root_public_text(root)}
    for purpose, service in KEY_DATABASES.items():
        if service not in database_urls:
            continue
        store = key_store(purpose)
        engine = sa.create_engine(database_urls[service], poolclass=sa.pool.NullPool)
        try:
            try:
                store.active_key(engine, anchored)  # records or makes the key that will sign
            except ServiceUnavailable:
                pass  # not endorsed yet: that is what follows
            waiting = [jwk["kid"] for jwk in store.awaiting_endorsement(engine, anchored)]
            endorse_keys(root, purpose, engine, waiting)
        finally:
            engine.dispose()
