"""Signing in: a username and password in, an access token out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ksmart_common.errors import Unauthenticated
from ksmart_identity.keys import active_signing_key
from ksmart_identity.tokens import issue_access_token
from ksmart_identity.users import Offload, authenticate, call_directly

# One message for every failure, so a caller learns nothing about which
# usernames exist.
WRONG_CREDENTIALS = "wrong username or password"


def password_sign_in(
    engine: sa.Engine,
    username: str,
    password: str,
    ttl_seconds: int,
    now: datetime,
    environ: Mapping[str, str] | None = None,
    offload: Offload = call_directly,
) -> dict[str, Any]:
    """The token response (OAuth 2 shape) or Unauthenticated."""
    user = authenticate(engine, username, password, offload=offload)
    if user is None:
        raise Unauthenticated(WRONG_CREDENTIALS)
    key = active_signing_key(engine, environ)
    return {
        "access_token": issue_access_token(key.private_key, key.kid, user, ttl_seconds, now),
        "token_type": "Bearer",
        "expires_in": ttl_seconds,
    }
