"""The portal's defences, each in one place:

- the session lives in a cookie encrypted and authenticated with Fernet
  (AES-128-CBC and HMAC-SHA256) under a key derived from the portal's
  secret, HttpOnly, SameSite=Lax, Secure outside development: the gateway's
  tokens it holds are never readable by the browser or its scripts, never
  in a URL and never in a page;
- a CSRF token, kept in that session, on every form that changes anything
  (POST); a GET form (the search) changes nothing and carries none, so no
  secret ever reaches a URL;
- headers on every response: a Content-Security-Policy that allows no
  inline script or style and nothing from another origin, no framing, no
  sniffing, no referrer to other sites, and no caching of pages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

from cryptography.fernet import Fernet, InvalidToken
from flask import Flask, Request, Response, session
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

SESSION_COOKIE = "ksmart_portal"
SESSION_MAX_AGE_SECONDS = 30 * 24 * 3600  # a refresh token's lifetime
CSRF_FIELD = "csrf_token"
CSRF_SESSION_KEY = "csrf"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
# A file's document (a PDF or an image) opened in the browser: nothing
# runs, and the browser's own viewer may show it (Chromium's PDF viewer is
# an embedded object, which "default-src 'none'" alone would refuse).
DOCUMENT_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "img-src 'self'",
        "object-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class PortalSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None) -> None:
        def changed(_self) -> None:
            self.modified = True

        super().__init__(initial, changed)
        self.modified = False


class EncryptedCookieSession(SessionInterface):
    """Flask's session, but encrypted: nobody holding the cookie can read it."""

    def __init__(self, secret_key: str) -> None:
        key = hashlib.sha256(b"ksmart-portal-session:" + secret_key.encode()).digest()
        self.fernet = Fernet(base64.urlsafe_b64encode(key))

    def open_session(self, app: Flask, request: Request) -> PortalSession:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return PortalSession()
        try:
            data = json.loads(self.fernet.decrypt(cookie.encode(), ttl=SESSION_MAX_AGE_SECONDS))
        except (InvalidToken, ValueError):
            return PortalSession()
        return PortalSession(data if isinstance(data, dict) else None)

    def save_session(self, app: Flask, session: PortalSession, response: Response) -> None:
        secure = not app.config["DEVELOPMENT"]
        if not session:
            if session.modified:
                response.delete_cookie(SESSION_COOKIE, httponly=True, secure=secure, samesite="Lax")
            return
        if not session.modified:
            return
        token = self.fernet.encrypt(json.dumps(session).encode()).decode()
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=SESSION_MAX_AGE_SECONDS,
            httponly=True,
            secure=secure,
            samesite="Lax",
        )


def csrf_token() -> str:
    """This session's CSRF token, made on first use."""
    if CSRF_SESSION_KEY not in session:
        session[CSRF_SESSION_KEY] = secrets.token_urlsafe(32)
    return session[CSRF_SESSION_KEY]


def csrf_is_valid(submitted: str | None) -> bool:
    expected = session.get(CSRF_SESSION_KEY)
    return bool(expected and submitted) and hmac.compare_digest(expected, submitted)


def renew_csrf_token() -> None:
    """A new token when the visitor signs in or out."""
    session[CSRF_SESSION_KEY] = secrets.token_urlsafe(32)
