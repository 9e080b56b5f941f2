"""The portal's one door to the platform: the gateway's public HTTP API.
Every call names the page's language (Accept-Language), and what comes
back is a Reply: the status, the JSON body (a problem document on an
error) and the headers the portal uses.

The portal is a proxy for the citizen: it passes on the X-Forwarded-For it
was given with the address it saw appended, as every proxy does, so that
the gateway (trusting the portal's network, KSMART_TRUSTED_PROXY) counts
each citizen's requests, not the portal's, against its per-caller limits."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

import requests

API_PREFIX = "/api/v1"
# A file name the portal passes on: plain characters only, never a header's worth.
FILENAME = re.compile(r'filename="([\w.-]{1,100})"')


class GatewayUnavailable(Exception):
    """The gateway could not be reached or failed (a 5xx)."""


@dataclass(frozen=True)
class Download:
    """A file the gateway sends (a certificate's PDF): passed on as it is."""

    status: int
    content: bytes
    content_type: str
    filename: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Gateway:
    def __init__(
        self,
        base_url: str,
        timeout: float = 10.0,
        session_factory=requests.Session,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session_factory = session_factory
        self._local = threading.local()  # a requests.Session is not shared by threads

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self._session_factory()
        return session

    def download(
        self, path: str, *, language: str, token: str, forwarded_for: str | None = None
    ) -> Download:
        """A binary answer (a PDF), read whole: certificates are small."""
        headers = {
            "Accept-Language": language,
            "Accept": "application/pdf, application/problem+json",
            "Authorization": f"Bearer {token}",
            **_forwarding(forwarded_for),
        }
        try:
            response = self._session().get(
                f"{self.base_url}{API_PREFIX}{path}", headers=headers, timeout=self.timeout
            )
        except requests.RequestException as error:
            raise GatewayUnavailable(str(error)) from error
        if response.status_code >= 500:
            raise GatewayUnavailable(f"GET {path}: {response.status_code}")
        disposition = response.headers.get("Content-Disposition", "")
        filename = FILENAME.search(disposition)
        return Download(
            response.status_code,
            response.content,
            response.headers.get("Content-Type", "application/octet-stream"),
            filename.group(1) if filename else None,
        )

    def call(
        self,
        method: str,
        path: str,
        *,
        language: str,
        token: str | None = None,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        forwarded_for: str | None = None,
    ) -> Reply:
        """One JSON call; `data` sends raw bytes instead (a document's upload)."""
        headers = {
            **(headers or {}),
            "Accept-Language": language,
            "Accept": "application/json",
            **_forwarding(forwarded_for),
        }
        if data is not None:
            headers["Content-Type"] = "application/octet-stream"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._session().request(
                method,
                f"{self.base_url}{API_PREFIX}{path}",
                params=params,
                json=json,
                data=data,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise GatewayUnavailable(str(error)) from error
        if response.status_code >= 500:
            raise GatewayUnavailable(f"{method} {path}: {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        retry_after = response.headers.get("Retry-After")
        kept = {"Retry-After": retry_after} if retry_after is not None else {}
        return Reply(response.status_code, body, kept)


def forwarded_for(received: str | None, peer: str | None) -> str | None:
    """The X-Forwarded-For to send on: what the portal was given, with the
    address it saw the request come from appended (None if it saw none)."""
    if not peer:
        return received or None
    return f"{received}, {peer}" if received else peer


def _forwarding(value: str | None) -> dict[str, str]:
    return {"X-Forwarded-For": value} if value else {}
