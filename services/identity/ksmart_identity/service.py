"""The identity service's nameko entrypoints: thin, each delegating to a plain
function that tests can call without a container."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from eventlet import tpool
from nameko.rpc import rpc

from ksmart_common.database import Database
from ksmart_common.errors import Unauthenticated
from ksmart_identity import keys
from ksmart_identity.config import access_token_ttl_seconds
from ksmart_identity.signin import password_sign_in


class IdentityService:
    name = "identity"

    db = Database()

    # A wrong password is the caller's mistake, not the service's: logged as a
    # warning, not an error that pages someone.
    @rpc(expected_exceptions=Unauthenticated)
    def login(self, username: str, password: str) -> dict[str, Any]:
        """{"access_token", "token_type": "Bearer", "expires_in"}, or
        Unauthenticated("wrong username or password")."""
        return password_sign_in(
            self.db,
            username,
            password,
            ttl_seconds=access_token_ttl_seconds(),
            now=datetime.now(UTC),
            # argon2 is CPU-bound for tens of milliseconds: on a real thread it
            # doesn't stall the container's other green threads.
            offload=tpool.execute,
        )

    @rpc
    def jwks(self) -> dict[str, Any]:
        """{"keys": [OKP JWK, ...]}: every public key a valid token may carry."""
        return keys.jwks(self.db)

    @rpc
    def health(self) -> dict[str, str]:
        with self.db.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return {"status": "ok"}
