"""Signing in and out: a password or a one-time code in, tokens out.

Every sign-in starts a session; the answer (OAuth 2 shape) carries a
short-lived access token naming the session (`sid`) and a refresh token that
rotates on every use. Logging out revokes the session.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ksmart_common.errors import Unauthenticated
from ksmart_identity import otp, sessions
from ksmart_identity.keys import active_signing_key
from ksmart_identity.tokens import issue_access_token
from ksmart_identity.users import (
    Offload,
    User,
    authenticate,
    call_directly,
    find_or_register_citizen,
    get_user,
)

# One message for every failure, so a caller learns nothing about which
# usernames exist.
WRONG_CREDENTIALS = "wrong username or password"


def token_response(
    engine: sa.Engine,
    user: User,
    session: sessions.Session,
    ttl_seconds: int,
    now: datetime,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    key = active_signing_key(engine, environ)
    return {
        "access_token": issue_access_token(
            key.private_key, key.kid, user, ttl_seconds, now, session.session_id
        ),
        "token_type": "Bearer",
        "expires_in": ttl_seconds,
        "refresh_token": session.refresh_token,
        "refresh_expires_in": int((session.expires_at - now).total_seconds()),
    }


def password_sign_in(
    engine: sa.Engine,
    username: str,
    password: str,
    ttl_seconds: int,
    now: datetime,
    environ: Mapping[str, str] | None = None,
    offload: Offload = call_directly,
) -> dict[str, Any]:
    """The token response, Unauthenticated, or TooManyRequests while locked."""
    user = authenticate(engine, username, password, offload=offload, now=now)
    if user is None:
        raise Unauthenticated(WRONG_CREDENTIALS)
    session = sessions.start_session(engine, user["user_id"], now)
    return token_response(engine, user, session, ttl_seconds, now, environ)


def code_sign_in(
    engine: sa.Engine,
    challenge_id: str,
    code: str,
    ttl_seconds: int,
    now: datetime,
    environ: Mapping[str, str] | None = None,
    offload: Offload = call_directly,
) -> tuple[dict[str, Any], User, bool]:
    """A citizen's sign-in with a one-time code: the token response, the
    user, and whether this first sign-in registered them."""
    destination = otp.verify_code(engine, challenge_id, code, now, offload)
    channel = "sms" if destination.startswith("+") else "email"
    user, registered = find_or_register_citizen(engine, destination, channel)
    session = sessions.start_session(engine, user["user_id"], now)
    return token_response(engine, user, session, ttl_seconds, now, environ), user, registered


def refresh(
    engine: sa.Engine,
    refresh_token: str,
    ttl_seconds: int,
    now: datetime,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """New tokens for a session, with the user's roles as they are now."""
    session = sessions.refresh_session(engine, refresh_token, now)
    user = get_user(engine, session.user_id)
    if user is None:
        sessions.revoke_session(engine, session.session_id, now, "user disabled")
        raise Unauthenticated("the account is disabled")
    return token_response(engine, user, session, ttl_seconds, now, environ)
