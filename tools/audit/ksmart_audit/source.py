"""Where the auditor's events come from. Every source yields audit
documents (what ksmart_common.envelope.to_document gives, what the gateway
serves: the envelope's fields and `canonical`, the stored text its hash
covers), page by page, so memory stays flat however long the log.

- `HttpSource`: the gateway's audit endpoints, with an auditor's token;
  what an auditor on another machine uses.
- `DatabaseSource` (ksmart_audit.database): the applications database, for
  operators; the only source that needs the kernel's I/O half.
- `JsonLinesSource`: an earlier export, read back line by line.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ksmart_common.envelope import file_stream_id

# The gateway serves at most this many events a page (schemas.AuditEventsQuery).
MAX_PAGE = 1_000
DEFAULT_PAGE = 500
TOKEN_ENV = "KSMART_AUDIT_TOKEN"


class SourceError(Exception):
    """The source cannot be read: unreachable, refusing us, or no such file.
    The command stops with exit status 2."""


class ViewUnavailable(Exception):
    """The platform would not show a file (the reason is the message)."""


def stream_of(file_id: str) -> str:
    """The file's stream, or SourceError for something that is no file id."""
    try:
        return file_stream_id(file_id)
    except ValueError as error:
        raise SourceError(f"{file_id!r} is not a file id (a UUID)") from error


def _note_to_stderr(message: str) -> None:
    print(f"note: {message}", file=sys.stderr, flush=True)


# -- the gateway ---------------------------------------------------------------


class HttpRefused(SourceError):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class HttpSource:
    """The gateway, as an auditor: GET /api/v1/audit/... and /api/v1/files/<id>.

    Transient failures (no connection, 502/503/504) are retried a few times.
    A 401 with a token file re-reads the file once, so a long export can
    outlive one access token if something keeps the file fresh."""

    RETRIES = 4

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        token_file: str | None = None,
        page_size: int = DEFAULT_PAGE,
        timeout: float = 30.0,
        note: Callable[[str], None] = _note_to_stderr,
    ) -> None:
        import requests

        self._requests = requests
        self.base_url = base_url.rstrip("/")
        self.token_file = token_file
        self.token = token if token is not None else self._read_token_file()
        if not self.token:
            raise SourceError(
                f"no auditor token: set {TOKEN_ENV} or give --token-file with the token"
            )
        self.page_size = max(1, min(page_size, MAX_PAGE))
        self.timeout = timeout
        self.note = note
        self.session = requests.Session()
        self.end_position: int | None = None  # the gateway does not tell

    def describe(self) -> str:
        return f"the gateway at {self.base_url}"

    def close(self) -> None:
        self.session.close()

    def _read_token_file(self) -> str:
        if not self.token_file:
            return ""
        try:
            return Path(self.token_file).read_text().strip()
        except OSError as error:
            raise SourceError(f"cannot read the token file: {error}") from error

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """The JSON answer of a GET, or HttpRefused / SourceError."""
        reply = self._fetch(path, params, "application/json")
        try:
            return reply.json()
        except ValueError as error:
            raise SourceError(f"{reply.url} did not answer JSON") from error

    def get_text(self, path: str, params: dict[str, Any] | None = None) -> str:
        """The text answer of a GET (a signed note, a key), or HttpRefused /
        SourceError."""
        reply = self._fetch(path, params, "text/plain")
        reply.encoding = "utf-8"
        return reply.text

    def _fetch(self, path: str, params: dict[str, Any] | None, accept: str) -> Any:
        url = f"{self.base_url}{path}"
        refreshed = False
        delay = 0.5
        for attempt in range(self.RETRIES + 1):
            last_try = attempt == self.RETRIES
            try:
                reply = self.session.get(
                    url,
                    params=params,
                    headers={"Authorization": f"Bearer {self.token}", "Accept": accept},
                    timeout=self.timeout,
                )
            except self._requests.RequestException as error:
                if last_try:
                    raise SourceError(f"cannot reach {url}: {error}") from error
                time.sleep(delay)
                delay *= 2
                continue
            if reply.status_code == 200:
                return reply
            if reply.status_code == 401 and self.token_file and not refreshed:
                refreshed = True
                self.token = self._read_token_file()
                continue
            if reply.status_code in (502, 503, 504) and not last_try:
                time.sleep(delay)
                delay *= 2
                continue
            raise HttpRefused(reply.status_code, _problem_detail(reply))
        raise SourceError(f"{url}: no answer after {self.RETRIES + 1} tries")

    def _get_checked(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """As get, with the refusals no command can work around explained."""
        try:
            return self.get(path, params)
        except HttpRefused as error:
            if error.status == 401:
                raise SourceError(
                    f"the gateway refused the token ({error}): sign in again as the "
                    f"auditor and give the fresh token ({TOKEN_ENV} or --token-file)"
                ) from error
            if error.status == 403:
                raise SourceError(
                    f"the gateway refused ({error}): the token is not an auditor's"
                ) from error
            raise

    def log(self, after: int = 0, until: int | None = None) -> Iterator[dict[str, Any]]:
        """Every event after `after` (up to `until`), page by page. Without
        `until` it stops at the first short page: the head of the log when
        it got there, not one that keeps moving."""
        position = after
        while True:
            limit = self.page_size if until is None else min(self.page_size, until - position)
            if limit <= 0:
                return
            page = self._get_checked("/api/v1/audit/events", {"after": position, "limit": limit})
            events = page.get("events") or []
            for document in events:
                if until is not None and document.get("global_position", 0) > until:
                    return
                yield document
            if not events:
                return
            next_position = page.get("next_position", events[-1].get("global_position"))
            if not isinstance(next_position, int) or next_position <= position:
                raise SourceError(f"the gateway's log does not advance past {position}")
            position = next_position
            if until is None and len(events) < limit:
                return

    def file_events(self, file_id: str) -> Iterator[dict[str, Any]]:
        stream = stream_of(file_id)
        try:
            answer = self._get_checked(f"/api/v1/audit/files/{uuid.UUID(file_id)}/events")
        except HttpRefused as error:
            if error.status == 404:
                raise SourceError(f"the gateway knows no file {file_id} ({error})") from error
            if error.status < 500:
                raise SourceError(f"the gateway refused {stream}'s events ({error})") from error
            # A server error for one file (an older platform replayed a file
            # before serving its events, and refused a damaged one): the
            # whole log still has the stream.
            self.note(
                f"the gateway could not serve {stream}'s events ({error}); "
                "reading them from the whole log instead"
            )
            yield from (doc for doc in self.log(0) if doc.get("stream_id") == stream)
            return
        yield from answer.get("events") or []

    def file_view(self, file_id: str) -> dict[str, Any]:
        try:
            return self._get_checked(f"/api/v1/files/{uuid.UUID(file_id)}")
        except HttpRefused as error:
            raise ViewUnavailable(f"GET /api/v1/files/{file_id} answered {error}") from error


def _problem_detail(reply: Any) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.reason or "no detail"
    if isinstance(body, dict):
        parts = [str(body[key]) for key in ("title", "detail") if body.get(key)]
        if parts:
            return ": ".join(parts)
    return reply.reason or "no detail"


def first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# -- an export read back -------------------------------------------------------


class JsonLinesSource:
    """An export (JSON lines) from a path or an open binary stream ("-": stdin).
    Yields (line number, document or the reason the line is none)."""

    def __init__(self, path: str, stdin: IO[bytes] | None = None) -> None:
        self.path = path
        self._stdin = stdin

    def describe(self) -> str:
        return "standard input" if self.path == "-" else f"the file {self.path}"

    def entries(self) -> Iterator[tuple[int, dict[str, Any] | str]]:
        if self.path == "-":
            yield from self._read(self._stdin or sys.stdin.buffer)
            return
        try:
            handle = open(self.path, "rb")
        except OSError as error:
            raise SourceError(f"cannot read {self.path}: {error}") from error
        with handle:
            yield from self._read(handle)

    @staticmethod
    def _read(handle: IO[bytes]) -> Iterator[tuple[int, dict[str, Any] | str]]:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                document = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as error:
                yield number, f"line {number} is not JSON: {error}"
                continue
            if not isinstance(document, dict):
                yield number, f"line {number} is not a JSON object"
                continue
            yield number, document
