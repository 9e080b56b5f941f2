"""The gateway, as the person at the page: calls in the page's language
with their address forwarded, and calls as the signed-in person with the
tokens kept in the encrypted session and refreshed on the server's side.
The tokens never reach the browser."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from flask import abort, current_app, g, redirect, request, session, url_for

from ksmart_portal.gateway import Download, Gateway, GatewayUnavailable, Reply, forwarded_for

# Refresh the access token this long before it expires.
REFRESH_MARGIN_SECONDS = 30
# What the session holds about the signed-in person (tokens, and who they
# are as GET /me said at sign-in), removed together at sign-out.
SESSION_KEYS = ("access_token", "refresh_token", "access_expires_at", "caller")


def gateway() -> Gateway:
    return current_app.extensions["gateway"]


def call(method: str, path: str, **arguments: Any) -> Reply:
    return gateway().call(method, path, language=g.language, forwarded_for=forwarded(), **arguments)


def log_key() -> str | None:
    """The transparency log's verifier key, which the pages check the
    citizen's proofs with (ksmart_portal.log_proof): public, kept by the
    portal's HTTP cache as long as the gateway says (an hour)."""
    return gateway().text("/log/key", language=g.language)


def forwarded() -> str | None:
    return forwarded_for(request.headers.get("X-Forwarded-For"), request.remote_addr)


# -- the session's tokens ------------------------------------------------------


def signed_in() -> bool:
    return "refresh_token" in session


def keep_tokens(tokens: Mapping[str, Any]) -> None:
    session["access_token"] = tokens["access_token"]
    session["refresh_token"] = tokens["refresh_token"]
    session["access_expires_at"] = time.time() + int(tokens["expires_in"])


def start_session(tokens: Mapping[str, Any]) -> None:
    """Keep a new session's tokens and who they speak for (GET /me), so the
    pages offer each person the work of their roles."""
    keep_tokens(tokens)
    me = call("GET", "/me", token=tokens["access_token"])
    if not me.ok:  # tokens just issued and refused: the platform is not itself
        forget_tokens()
        raise GatewayUnavailable(f"GET /me: {me.status}")
    session["caller"] = {
        "user_id": me.body.get("user_id"),
        "username": me.body.get("username"),
        "roles": list(me.body.get("roles", [])),
        "local_body": me.body.get("local_body"),
    }


def forget_tokens() -> None:
    for key in SESSION_KEYS:
        session.pop(key, None)


def caller() -> dict[str, Any]:
    """Who is signed in ({} when nobody is)."""
    return session.get("caller", {}) if signed_in() else {}


def has_role(*roles: str) -> bool:
    return bool(set(caller().get("roles", ())) & set(roles))


def refresh() -> bool:
    reply = call("POST", "/auth/refresh", json={"refresh_token": session["refresh_token"]})
    if reply.ok:
        keep_tokens(reply.body)
        return True
    forget_tokens()
    return False


def access_token() -> str | None:
    """A live access token, refreshed first when it is about to expire."""
    if not signed_in():
        return None
    if time.time() >= session.get("access_expires_at", 0) - REFRESH_MARGIN_SECONDS:
        if not refresh():
            return None
    return session["access_token"]


def call_as_user(method: str, path: str, **arguments: Any) -> Reply | None:
    """A call as the signed-in person, refreshed once on a 401; None when
    the session has ended."""
    token = access_token()
    if token is None:
        return None
    reply = call(method, path, token=token, **arguments)
    if reply.status == 401 and refresh():
        reply = call(method, path, token=session["access_token"], **arguments)
    return reply


class SessionEnded(Exception):
    """A call found the session over: the app's handler sends the person
    to sign in (ksmart_portal.app)."""


def as_user(method: str, path: str, **arguments: Any) -> Reply:
    """A call as the signed-in person; SessionEnded (to sign in) when
    their session is over."""
    reply = call_as_user(method, path, **arguments)
    if reply is None or reply.status == 401:
        raise SessionEnded
    return reply


def download_as_user(path: str, accept: str = "application/pdf") -> Download | None:
    """A file the gateway sends (a certificate, a document), fetched as the
    signed-in person and refreshed once on a 401; None when the session
    has ended. The token stays here: the browser gets the bytes only."""
    token = access_token()
    if token is None:
        return None
    fetched = gateway().download(
        path, language=g.language, token=token, forwarded_for=forwarded(), accept=accept
    )
    if fetched.status == 401 and refresh():
        fetched = gateway().download(
            path,
            language=g.language,
            token=session["access_token"],
            forwarded_for=forwarded(),
            accept=accept,
        )
    return fetched


def to_sign_in():
    """The session has ended: back to signing in."""
    forget_tokens()
    return redirect(url_for("sign_in"), code=303)


def needs_role(*roles: str):
    """For a page of some roles only: a redirect to sign in when nobody is
    signed in, a 404 for anyone else (the page is not theirs), None to go on."""
    if access_token() is None:
        session["after_sign_in"] = request.full_path.rstrip("?")
        return redirect(url_for("staff_sign_in"), code=303)
    if not has_role(*roles):
        abort(404)
    return None


# -- the catalogue and the directory, read once a request ----------------------


def service(code: str) -> dict[str, Any]:
    """A service's definition, once a request; {} when it cannot be read
    (the page then names the service by its code)."""
    known = g.setdefault("services", {})
    if code not in known:
        reply = call("GET", f"/services/{quote(code, safe='')}")
        known[code] = reply.body if reply.ok else {}
    return known[code]


def service_or_404(code: str) -> dict[str, Any]:
    found = service(code)
    if not found:
        abort(404)
    return found


def local_body(code: str) -> dict[str, Any]:
    reply = call("GET", f"/local-bodies/{quote(code, safe='')}")
    return reply.body if reply.ok else {}
