"""Ed25519 signing keys kept in a table: one implementation for the identity
service's token keys (`signing_keys`) and the applications service's
certificate keys (`certificate_keys`).

Production gives the key in an environment variable (an Ed25519 private key
in PEM, from a secret store); it is never written to the database. Without
it (a fresh developer machine) the service keeps its keys in its table,
generating the first one on first use, so no secret needs to live in the
repository. `rotate` stores a newer key, which signs from then on; older
keys stay published, so what they signed keeps verifying.

The two tables differ in two rules, each a flag here rather than a copy:
- `retirable`: token keys are retired (retired_at set) once every token
  they signed has expired; certificate keys never are, because a
  certificate must verify for as long as it is kept.
- `records_environment_key`: a certificate key given in the environment is
  recorded with its public half only (private_key_pem NULL), so what it
  signed still verifies after the operator replaces it; a token key need not
  be, since its tokens expire within minutes of a replacement.

Each table has the columns kid (text, primary key), private_key_pem (text,
NULL for a recorded environment key and a retired key), public_jwk (jsonb),
created_at (timestamptz), when retirable retired_at (timestamptz NULL), and
when anchored endorsement (text NULL).

A store given a `purpose` is anchored (ksmart_common.key_anchor): a row is
trusted only with the deployment root's endorsement for that purpose, since
the service's own role can insert rows. Only endorsed keys are published and
sign; an environment key is recorded (public half) so that it can carry its
endorsement. Retiring a key destroys its private half, not only flags it.

`environment_only` (the event key): the key is the environment's or there
is none; no private half is ever generated or stored.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ksmart_common import ed25519, key_environment
from ksmart_common.errors import ServiceUnavailable
from ksmart_common.key_anchor import ENDORSEMENT_MEMBER, KeyAnchor

_TABLE_NAME = re.compile(r"[a-z_]+")


@dataclass(frozen=True)
class SigningKey:
    # Equal when their kids are: the kid is a hash of the public key.
    kid: str
    private_key: Ed25519PrivateKey = field(compare=False, repr=False)

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey) -> SigningKey:
        return cls(ed25519.key_id(private_key.public_key()), private_key)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls.from_private_key(ed25519.generate_private_key())

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def public_jwk(self) -> dict[str, str]:
        """The public half as an OKP JWK (RFC 8037)."""
        return ed25519.public_jwk(self.private_key, self.kid)


class KeyStore:
    """Which key signs, and which public keys a verifier should trust.

    `environ` is read for the environment key on every call (a test passes
    its own mapping; None reads os.environ)."""

    def __init__(
        self,
        table: str,
        environment_variable: str,
        *,
        retirable: bool,
        records_environment_key: bool,
        purpose: str | None = None,
        environment_only: bool = False,
    ) -> None:
        if not _TABLE_NAME.fullmatch(table):
            raise ValueError(f"not a table name: {table!r}")
        self.table = table
        self.environment_variable = environment_variable
        self.retirable = retirable
        self.records_environment_key = records_environment_key
        self.purpose = purpose
        # The key is the environment's or none: a private half is never
        # stored (the event key: the database must not hold what forges).
        self.environment_only = environment_only
        # Serialises "no key yet, create one" across replicas starting
        # together, so a fresh database gets one first key, not one per
        # replica. Advisory locks are per database and need no privilege.
        self._first_key_lock = int.from_bytes(table.encode("ascii")[:7], "big")
        self._recorded: set[str] = set()
        # Environment keys whose endorsement was checked: an endorsement
        # never stops being valid, so it is read once per kid.
        self._endorsed_environment_keys: set[str] = set()
        # The keys still published: all of them, unless keys can be retired.
        self._live = "retired_at IS NULL" if retirable else "TRUE"

    def environment_key(self, environ: Mapping[str, str] | None = None) -> SigningKey | None:
        private_key = key_environment.private_key_from_environment(
            self.environment_variable, environ
        )
        return None if private_key is None else SigningKey.from_private_key(private_key)

    def active_key(self, engine: sa.Engine, environ: Mapping[str, str] | None = None) -> SigningKey:
        """The key that signs from now on: the environment's, else the newest
        live stored key (when anchored: the newest endorsed one), else a new
        stored key. When anchored and the key that would sign is not
        endorsed, ServiceUnavailable names it: nothing it signed would be
        trusted."""
        key = self.environment_key(environ)
        if key is not None:
            if (self.records_environment_key or self.purpose) and key.kid not in self._recorded:
                with engine.begin() as conn:
                    self._record_public_key(conn, key)
                self._recorded.add(key.kid)
            if self.purpose is not None and key.kid not in self._endorsed_environment_keys:
                with engine.connect() as conn:
                    if not self._live_endorsed_jwks(conn, environ, kid=key.kid):
                        raise self._not_endorsed(key.kid)
                self._endorsed_environment_keys.add(key.kid)
            return key
        if self.environment_only:
            raise ServiceUnavailable(
                f"no {self.purpose or self.table} signing key: {self.environment_variable} is not"
                " set (it is never kept in the database)"
            )
        with engine.connect() as conn:
            stored = self._newest_stored_key(conn, environ)
        if stored is not None:
            return stored
        with engine.begin() as conn:
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": self._first_key_lock}
            )
            # Another replica may have created it while we waited for the lock.
            stored = self._newest_stored_key(conn, environ)
            if stored is not None:
                return stored
            if self.purpose is None:
                return self._store_new_key(conn)
            # A key awaiting its endorsement: made once, so the operator has
            # one to endorse.
            waiting = self._newest_stored_key(conn, environ, endorsed_only=False)
            if waiting is None:
                waiting = self._store_new_key(conn)
        raise self._not_endorsed(waiting.kid)

    def _not_endorsed(self, kid: str) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"the {self.purpose} signing key {kid} has no endorsement by the deployment's key"
            f" root: the operator runs `ksmart-admin endorse-keys {self.purpose}`"
        )

    def rotate(self, engine: sa.Engine) -> SigningKey:
        """Store a new key, which signs from now on (unless the environment
        gives one; when anchored, once endorsed); what older keys signed
        keeps verifying."""
        if self.environment_only:
            raise ValueError(f"keys of {self.table} are given in {self.environment_variable}")
        with engine.begin() as conn:
            return self._store_new_key(conn)

    def retire(self, engine: sa.Engine, kid: str, now: datetime) -> bool:
        """Stop publishing a stored key and destroy its private half. False
        if there is no such live key."""
        if not self.retirable:
            raise ValueError(f"keys in {self.table} are never retired")
        with engine.begin() as conn:
            result = conn.execute(
                sa.text(
                    # The private half is destroyed, not only flagged: a
                    # retired key can never sign again, whoever reads the table.
                    f"UPDATE {self.table} SET retired_at = :now, private_key_pem = NULL "
                    "WHERE kid = :kid AND retired_at IS NULL"
                ),
                {"kid": kid, "now": now},
            )
        return result.rowcount == 1

    def jwks(self, engine: sa.Engine, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Every public key a genuine signature may be made with, the active
        one first (when anchored: only endorsed keys, each with its
        endorsement). The active key is made sure of first, so it is
        published before it signs anything."""
        try:
            active: SigningKey | None = self.active_key(engine, environ)
        except ServiceUnavailable:
            active = None  # no endorsed key signs; the endorsed ones still verify
        with engine.connect() as conn:
            published = self._live_endorsed_jwks(conn, environ)
        if active is None:
            return {"keys": published}
        first = [jwk for jwk in published if jwk["kid"] == active.kid]
        if not first and self.purpose is None:
            first = [active.public_jwk]  # an environment key this store does not record
        return {"keys": first + [jwk for jwk in published if jwk["kid"] != active.kid]}

    def record(self, engine: sa.Engine, key: SigningKey) -> None:
        """Record a key's public half before it signs, so that the operator
        can endorse it before rolling it out (a replaced environment key)."""
        with engine.begin() as conn:
            self._record_public_key(conn, key)

    def endorse(self, engine: sa.Engine, kid: str, endorsement: str) -> bool:
        """Store the root's endorsement of a stored key. False if there is no
        such key. The endorsement is checked by every reader, not here."""
        with engine.begin() as conn:
            result = conn.execute(
                sa.text(f"UPDATE {self.table} SET endorsement = :endorsement WHERE kid = :kid"),
                {"kid": kid, "endorsement": endorsement},
            )
        return result.rowcount == 1

    def awaiting_endorsement(
        self, engine: sa.Engine, environ: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """The live keys without a valid endorsement (all live keys when no
        root is configured), newest first, as public JWKs."""
        anchor = KeyAnchor.from_environment(os.environ if environ is None else environ)
        with engine.connect() as conn:
            jwks = self._live_jwks(conn)
        return [
            _without_endorsement(jwk)
            for jwk in jwks
            if anchor is None or not anchor.endorses(self.purpose or "", jwk)
        ]

    def live_keys(self, engine: sa.Engine) -> list[dict[str, Any]]:
        """Every live key, endorsed or not, newest first, as public JWKs."""
        with engine.connect() as conn:
            return [_without_endorsement(jwk) for jwk in self._live_jwks(conn)]

    def _live_jwks(self, conn: sa.Connection, kid: str | None = None) -> list[dict[str, Any]]:
        """Live keys' JWKs, newest first, with their stored endorsement."""
        endorsement = "endorsement" if self.purpose is not None else "NULL"
        rows = conn.execute(
            sa.text(
                f"SELECT kid, public_jwk, {endorsement} AS endorsement FROM {self.table} "
                f"WHERE {self._live} AND (CAST(:kid AS text) IS NULL OR kid = :kid) "
                "ORDER BY created_at DESC, kid"
            ),
            {"kid": kid},
        )
        return [
            {**row.public_jwk, **({ENDORSEMENT_MEMBER: row.endorsement} if row.endorsement else {})}
            for row in rows
        ]

    def _live_endorsed_jwks(
        self, conn: sa.Connection, environ: Mapping[str, str] | None, kid: str | None = None
    ) -> list[dict[str, Any]]:
        """The live keys a verifier trusts: all of them when the store is not
        anchored; else those the configured root endorses (none without one)."""
        jwks = self._live_jwks(conn, kid)
        if self.purpose is None:
            return jwks
        anchor = KeyAnchor.from_environment(os.environ if environ is None else environ)
        return anchor.endorsed(self.purpose, jwks) if anchor is not None else []

    def _newest_stored_key(
        self,
        conn: sa.Connection,
        environ: Mapping[str, str] | None = None,
        endorsed_only: bool = True,
    ) -> SigningKey | None:
        """The newest live key with a private half (when anchored and
        `endorsed_only`: the newest endorsed one)."""
        rows = conn.execute(
            sa.text(
                f"SELECT kid, private_key_pem FROM {self.table} "
                f"WHERE private_key_pem IS NOT NULL AND {self._live} "
                "ORDER BY created_at DESC, kid"
            )
        ).all()
        if self.purpose is not None and endorsed_only:
            endorsed = {jwk["kid"] for jwk in self._live_endorsed_jwks(conn, environ)}
            rows = (row for row in rows if row.kid in endorsed)
        row = next(iter(rows), None)
        if row is None:
            return None
        return SigningKey(row.kid, ed25519.private_key_from_pem(row.private_key_pem))

    def _store_new_key(self, conn: sa.Connection) -> SigningKey:
        key = SigningKey.generate()
        conn.execute(
            sa.text(
                f"INSERT INTO {self.table} (kid, private_key_pem, public_jwk, created_at) "
                "VALUES (:kid, :pem, CAST(:jwk AS jsonb), clock_timestamp())"
            ),
            {
                "kid": key.kid,
                "pem": ed25519.private_key_to_pem(key.private_key),
                "jwk": json.dumps(key.public_jwk),
            },
        )
        return key

    def _record_public_key(self, conn: sa.Connection, key: SigningKey) -> None:
        conn.execute(
            sa.text(
                f"INSERT INTO {self.table} (kid, private_key_pem, public_jwk, created_at) "
                "VALUES (:kid, NULL, CAST(:jwk AS jsonb), clock_timestamp()) "
                "ON CONFLICT (kid) DO NOTHING"
            ),
            {"kid": key.kid, "jwk": json.dumps(key.public_jwk)},
        )


def _without_endorsement(jwk: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in jwk.items() if name != ENDORSEMENT_MEMBER}
