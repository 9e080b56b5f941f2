"""Sessions: what a sign-in leaves behind, so it can be refreshed and ended.

A session holds a refresh token, stored as its sha256 (the token is 256
random bits, so a plain hash cannot be reversed). Each refresh rotates it:
the old token stops working and a new one is handed out. If an old token
comes back (someone kept a copy), the session is revoked: the thief and the
owner both have to sign in again, which is the safe outcome.

Access tokens name their session (`sid`). Revoking a session (logout, reuse,
an administrator disabling a user or changing their roles) is published as a
list the gateway polls (`revoked_since`), so access tokens of a revoked
session stop working within seconds, without a call per request.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from ksmart_common.config import env
from ksmart_common.errors import Unauthenticated
from ksmart_common.identifiers import is_uuid


def refresh_token_ttl_seconds() -> int:
    return int(env("KSMART_REFRESH_TOKEN_TTL_SECONDS", str(30 * 24 * 3600)))


@dataclass(frozen=True)
class Session:
    session_id: str
    user_id: str
    refresh_token: str
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(engine: sa.Engine, user_id: str, now: datetime) -> Session:
    token = secrets.token_urlsafe(32)
    session = Session(
        str(uuid.uuid4()), user_id, token, now + timedelta(seconds=refresh_token_ttl_seconds())
    )
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO sessions (session_id, user_id, refresh_hash, created_at,"
                " refreshed_at, expires_at) VALUES (:sid, :uid, :hash, :now, :now, :expires)"
            ),
            {
                "sid": session.session_id,
                "uid": user_id,
                "hash": _digest(token),
                "now": now,
                "expires": session.expires_at,
            },
        )
    return session


def refresh_session(engine: sa.Engine, refresh_token: str, now: datetime) -> Session:
    """The session with a new refresh token; Unauthenticated if the token is
    unknown, expired, revoked, or an old one coming back (which revokes)."""
    if not isinstance(refresh_token, str) or not refresh_token:
        raise Unauthenticated("no refresh token")
    digest = _digest(refresh_token)
    reused = False
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                "SELECT session_id, user_id, expires_at, revoked_at, true AS current"
                " FROM sessions WHERE refresh_hash = :hash"
                " UNION ALL SELECT s.session_id, s.user_id, s.expires_at, s.revoked_at, false"
                " FROM retired_refresh_tokens r JOIN sessions s USING (session_id)"
                " WHERE r.refresh_hash = :hash"
            ),
            {"hash": digest},
        ).one_or_none()
        if row is None:
            raise Unauthenticated("the refresh token is not valid")
        # One refresh at a time per session.
        conn.execute(
            sa.text("SELECT 1 FROM sessions WHERE session_id = :sid FOR UPDATE"),
            {"sid": row.session_id},
        )
        if row.revoked_at is not None:
            raise Unauthenticated("the session has ended; sign in again")
        if now >= row.expires_at:
            raise Unauthenticated("the session has expired; sign in again")
        if not row.current:
            # A rotated-out token used again: a copy exists somewhere.
            _revoke(conn, str(row.session_id), now, "refresh token reused")
            reused = True
        else:
            token = secrets.token_urlsafe(32)
            updated = conn.execute(
                sa.text(
                    "UPDATE sessions SET refresh_hash = :new, refreshed_at = :now"
                    " WHERE session_id = :sid AND refresh_hash = :old AND revoked_at IS NULL"
                ),
                {"new": _digest(token), "now": now, "sid": row.session_id, "old": digest},
            )
            if updated.rowcount != 1:
                # Another refresh with the same token won the row lock first.
                raise Unauthenticated("the refresh token was just used; sign in again")
            conn.execute(
                sa.text(
                    "INSERT INTO retired_refresh_tokens (refresh_hash, session_id, retired_at)"
                    " VALUES (:old, :sid, :now)"
                ),
                {"old": digest, "sid": row.session_id, "now": now},
            )
    if reused:
        raise Unauthenticated("the refresh token was used before; sign in again")
    return Session(str(row.session_id), str(row.user_id), token, row.expires_at)


def revoke_session(engine: sa.Engine, session_id: str, now: datetime, reason: str) -> bool:
    with engine.begin() as conn:
        return _revoke(conn, session_id, now, reason)


def revoke_user_sessions(conn: sa.Connection, user_id: str, now: datetime, reason: str) -> int:
    """End every open session of a user (disabled, or their roles changed)."""
    result = conn.execute(
        sa.text(
            "UPDATE sessions SET revoked_at = :now, revoked_reason = :reason"
            " WHERE user_id = :uid AND revoked_at IS NULL AND expires_at > :now"
        ),
        {"now": now, "reason": reason, "uid": user_id},
    )
    return result.rowcount


def revoked_since(engine: sa.Engine, since: datetime) -> list[dict[str, str]]:
    """Sessions revoked after `since` (the gateway asks for those revoked
    within an access token's lifetime: older ones' tokens expired anyway)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT session_id, revoked_at FROM sessions WHERE revoked_at > :since"
                " ORDER BY revoked_at"
            ),
            {"since": since},
        ).all()
    return [{"sid": str(row.session_id), "revoked_at": row.revoked_at.isoformat()} for row in rows]


def _revoke(conn: sa.Connection, session_id: str, now: datetime, reason: str) -> bool:
    if not is_uuid(session_id):
        return False
    result = conn.execute(
        sa.text(
            "UPDATE sessions SET revoked_at = :now, revoked_reason = :reason"
            " WHERE session_id = :sid AND revoked_at IS NULL"
        ),
        {"now": now, "reason": reason, "sid": session_id},
    )
    return result.rowcount == 1
