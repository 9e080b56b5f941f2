"""The portal's one door to the platform: the gateway's public HTTP API.
Every call names the page's language (Accept-Language), and what comes
back is a Reply: the status, the JSON body (a problem document on an
error) and the headers the portal uses.

The portal is a proxy for the citizen: it passes on the X-Forwarded-For it
was given with the address it saw appended, as every proxy does, so that
the gateway (trusting the portal's network, KSMART_TRUSTED_PROXY) counts
each citizen's requests, not the portal's, against its per-caller limits.

Anonymous GETs whose answers the gateway marks public (the catalogue, the
directory) go through the process's HTTP cache (ksmart_portal.http_cache);
a call with a token never does."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

from ksmart_portal.http_cache import HttpCache, Kept, shared_lifetime

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
        cache: HttpCache | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session_factory = session_factory
        # One cache for the process, shared by its threads.
        self.cache = cache if cache is not None else HttpCache()
        self._local = threading.local()  # a requests.Session is not shared by threads

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self._session_factory()
        return session

    def download(
        self,
        path: str,
        *,
        language: str,
        token: str,
        forwarded_for: str | None = None,
        accept: str = "application/pdf",
    ) -> Download:
        """A binary answer (a certificate's PDF, a file's document), read
        whole: certificates are small, documents at most 25 MiB."""
        headers = {
            "Accept-Language": language,
            "Accept": f"{accept}, application/problem+json",
            "Authorization": f"Bearer {token}",
            **_forwarding(forwarded_for),
        }
        response = self._send("GET", f"{self.base_url}{API_PREFIX}{path}", headers=headers)
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
        url = f"{self.base_url}{API_PREFIX}{path}"
        if method == "GET" and "Authorization" not in headers and json is None and data is None:
            kept = self._cached_get(url, params, headers)
            return _kept_reply(kept) if isinstance(kept, Kept) else _reply(kept)
        return _reply(self._send(method, url, params=params, json=json, data=data, headers=headers))

    def _send(self, method: str, url: str, **arguments: Any) -> requests.Response:
        try:
            response = self._session().request(method, url, timeout=self.timeout, **arguments)
        except requests.RequestException as error:
            raise GatewayUnavailable(str(error)) from error
        if response.status_code >= 500:
            raise GatewayUnavailable(f"{method} {url}: {response.status_code}")
        return response

    def text(self, path: str, *, language: str) -> str | None:
        """A public text answer (the log's key), through the cache; None
        unless it is a 200."""
        headers = {"Accept-Language": language, "Accept": "text/plain"}
        kept = self._cached_get(f"{self.base_url}{API_PREFIX}{path}", None, headers)
        if isinstance(kept, Kept):
            return kept.content.decode("utf-8", "replace")
        return kept.text if kept.status_code == 200 else None

    def _cached_get(
        self, url: str, params: dict[str, str] | None, headers: dict[str, str]
    ) -> Kept | requests.Response:
        """An anonymous GET: served from the cache while fresh; once stale,
        asked again with If-None-Match, a 304 serving what was kept. What
        was kept, or the gateway's answer when it is not kept."""
        key = (
            f"{url}?{urlencode(sorted(params.items()))}" if params else url,
            headers["Accept-Language"],
        )
        kept = self.cache.get(key)
        if kept is not None and self.cache.is_fresh(kept):
            return kept
        if kept is not None and kept.etag:
            headers = {**headers, "If-None-Match": kept.etag}
        response = self._send("GET", url, params=params, headers=headers)
        lifetime = shared_lifetime(response.headers.get("Cache-Control"))
        if response.status_code == 304 and kept is not None:
            return self.cache.put(
                key,
                kept.content,
                response.headers.get("ETag") or kept.etag,
                lifetime if lifetime is not None else kept.lifetime,
            )
        if response.status_code == 200 and lifetime is not None:
            self.cache.put(key, response.content, response.headers.get("ETag"), lifetime)
        else:
            self.cache.discard(key)
        return response


def _reply(response: requests.Response) -> Reply:
    retry_after = response.headers.get("Retry-After")
    kept = {"Retry-After": retry_after} if retry_after is not None else {}
    return Reply(response.status_code, _json_object(response.content), kept)


def _kept_reply(kept: Kept) -> Reply:
    # Parsed anew each time: each page gets its own objects to change.
    return Reply(200, _json_object(kept.content))


def _json_object(content: bytes) -> dict[str, Any]:
    try:
        body = json.loads(content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def forwarded_for(received: str | None, peer: str | None) -> str | None:
    """The X-Forwarded-For to send on: what the portal was given, with the
    address it saw the request come from appended (None if it saw none)."""
    if not peer:
        return received or None
    return f"{received}, {peer}" if received else peer


def _forwarding(value: str | None) -> dict[str, str]:
    return {"X-Forwarded-For": value} if value else {}
