"""The local fake SMS provider, for development and tests.

A real HTTP server (not a mock) that speaks the protocol HttpSmsProvider
speaks, so the adapter is tested over real sockets and `make run` can sign a
developer in with a code "texted" to it:

    POST /sms       send: {"to", "text", "sender", "reference", "unicode"}
                    -> 200 {"id": "fake-<n>"}; the same reference again
                    returns the same id and stores nothing (idempotency)
    GET  /sms?to=   the messages received (for one number): "the phone"
    POST /control   failure injection from another process:
                    {"fail_next": n, "status": s} | {"fail_always": true,
                    "status": s} | {"recover": true}
    GET  /health    200 once listening

An embedding server may add JSON GET routes (the dev inbox's /mail) and
pages of its own (make run's payment checkout: ksmart_ops.dev_checkout).

When a receipt URL is configured, every accepted message is followed by a
signed delivery receipt (as a real provider would send), posted from a
background thread so a slow receiver never slows a send.

It listens on loopback only: it has no authentication unless given an API
key, and it keeps the texts (sign-in codes included) for anyone who asks.

    python -m ksmart_notifications.channels.fake_sms --port 8026

takes the receipt URL and secret from KSMART_SMS_RECEIPT_URL and
KSMART_SMS_RECEIPT_SECRET, and the API key to expect from KSMART_SMS_API_KEY.
"""

from __future__ import annotations

import argparse
import json
import queue
import re
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from ksmart_common import signatures
from ksmart_common.canonical import canonical_json
from ksmart_common.config import env
from ksmart_common.envelope import format_timestamp
from ksmart_common.logging import configure_logging, get_logger
from ksmart_notifications.channels.sms import (
    SMS_API_KEY_ENV,
    SMS_RECEIPT_SECRET_ENV,
    sign_receipt,
)

log = get_logger(__name__)

RECEIPT_URL_ENV = "KSMART_SMS_RECEIPT_URL"
LOOPBACK = "127.0.0.1"
MAX_BODY_BYTES = 64 * 1024
RECEIPT_TIMEOUT_SECONDS = 5.0
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")

# A GET route of an embedding server (dev_inbox adds /mail): it gets the
# query's parameters and returns something JSON can write.
GetRoute = Callable[[Mapping[str, str]], Any]


@dataclass(frozen=True)
class PageReply:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: Mapping[str, str] = dataclass_field(default_factory=dict)


# A page of an embedding server, for GET and POST: it gets the method, the
# query's parameters and a POST's form fields (application/x-www-form-urlencoded).
PageRoute = Callable[[str, Mapping[str, str], Mapping[str, str]], PageReply]


class FakeSmsServer:
    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        receipt_url: str | None = None,
        receipt_secret: bytes | None = None,
        api_key: str | None = None,
        get_routes: Mapping[str, GetRoute] | None = None,
        pages: Mapping[str, PageRoute] | None = None,
    ) -> None:
        if receipt_url and not receipt_secret:
            raise ValueError("receipts need a secret to sign them with")
        if receipt_secret is not None:
            sign_receipt(b"", receipt_secret)  # refuses a secret too short to be safe
        self.host = host
        self.port = port
        self.receipt_url = receipt_url
        self._receipt_secret = receipt_secret
        self._api_key = api_key
        self._get_routes = dict(get_routes or {})
        self.pages = dict(pages or {})
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._ids_by_reference: dict[str, str] = {}
        self._fail_remaining = 0
        self._fail_always = False
        self._fail_status = 503
        self._requests_received = 0
        self._failures_answered = 0
        self._duplicates = 0
        self._receipts: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._http: _HttpServer | None = None
        self._threads: list[threading.Thread] = []
        # TCP connections taken: a sender reusing its connections opens few.
        self.connections_accepted = 0

    # --- lifecycle --------------------------------------------------------

    def start(self) -> FakeSmsServer:
        self._http = _HttpServer((self.host, self.port), _Handler)
        self._http.fake = self
        self.port = self._http.server_address[1]
        self._threads = [
            # A short poll interval: stop() waits for the serving loop to notice.
            threading.Thread(
                target=self._http.serve_forever, args=(0.05,), name="fake-sms", daemon=True
            ),
            threading.Thread(target=self._send_receipts, name="fake-sms-receipts", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("fake sms provider listening", url=self.send_url)
        return self

    def stop(self) -> None:
        if self._http is None:
            return
        self._http.shutdown()
        self._http.server_close()
        self._receipts.put(None)
        for thread in self._threads:
            thread.join(timeout=RECEIPT_TIMEOUT_SECONDS + 1)
        self._http = None

    def __enter__(self) -> FakeSmsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def send_url(self) -> str:
        """The URL to configure as KSMART_SMS_URL."""
        return f"{self.base_url}/sms"

    # --- failure injection ------------------------------------------------

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` sends with `status`, storing nothing."""
        with self._lock:
            self._fail_remaining, self._fail_status = count, status

    def fail_always(self, status: int = 503) -> None:
        with self._lock:
            self._fail_always, self._fail_status = True, status

    def recover(self) -> None:
        with self._lock:
            self._fail_remaining, self._fail_always = 0, False

    # --- what the fake saw ------------------------------------------------

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        """Copies of the stored messages (oldest first), for one number or all."""
        with self._lock:
            return [dict(m) for m in self._messages if to is None or m["to"] == to]

    @property
    def requests_received(self) -> int:
        """Every POST /sms, whatever was answered."""
        with self._lock:
            return self._requests_received

    @property
    def failures_answered(self) -> int:
        """Sends answered with an injected failure."""
        with self._lock:
            return self._failures_answered

    @property
    def duplicates(self) -> int:
        """Sends whose reference had been seen, answered with the first id."""
        with self._lock:
            return self._duplicates

    # --- request handling (called from the server's threads) -------------

    def _handle_send(self, authorization: str | None, body: bytes) -> tuple[int, Any]:
        with self._lock:
            self._requests_received += 1
            # An outage answers everyone, before anything is checked.
            if self._fail_always or self._fail_remaining > 0:
                self._fail_remaining = max(0, self._fail_remaining - 1)
                self._failures_answered += 1
                return self._fail_status, {"error": "injected failure"}
        if self._api_key and authorization != f"Bearer {self._api_key}":
            return 401, {"error": "missing or wrong API key"}
        document, errors = _validate_send(body)
        if errors:
            return 400, {"errors": errors}
        with self._lock:
            known = self._ids_by_reference.get(document["reference"])
            if known is not None:
                self._duplicates += 1
                return 200, {"id": known}
            message_id = f"fake-{len(self._messages) + 1}"
            self._ids_by_reference[document["reference"]] = message_id
            self._messages.append(
                {
                    "id": message_id,
                    "to": document["to"],
                    "text": document["text"],
                    "sender": document["sender"],
                    "reference": document["reference"],
                    "unicode": document["unicode"],
                    "received_at": format_timestamp(datetime.now(UTC)),
                }
            )
        if self.receipt_url:
            self._receipts.put({"id": message_id, "reference": document["reference"]})
        return 200, {"id": message_id}

    def _handle_control(self, body: bytes) -> tuple[int, Any]:
        try:
            command = json.loads(body)
        except ValueError:
            return 400, {"errors": ["the body must be JSON"]}
        if not isinstance(command, dict):
            return 400, {"errors": ["the body must be a JSON object"]}
        status = command.get("status", 503)
        if not isinstance(status, int) or not 400 <= status <= 599:
            return 400, {"errors": ["status must be an HTTP error status (400 to 599)"]}
        if command.get("recover") is True:
            self.recover()
        elif command.get("fail_always") is True:
            self.fail_always(status)
        elif isinstance(command.get("fail_next"), int) and command["fail_next"] >= 0:
            self.fail_next(command["fail_next"], status)
        else:
            return 400, {
                "errors": [
                    'expected {"fail_next": n, "status": s}, {"fail_always": true}'
                    ' or {"recover": true}'
                ]
            }
        return 200, {"ok": True}

    def _handle_get(self, path: str, query: Mapping[str, str]) -> tuple[int, Any]:
        if path == "/health":
            return 200, {"status": "ok"}
        if path == "/sms":
            return 200, self.messages(query.get("to"))
        route = self._get_routes.get(path)
        if route is None:
            return 404, {"error": "not found"}
        return 200, route(query)

    def _send_receipts(self) -> None:
        while (pending := self._receipts.get()) is not None:
            body = canonical_json(
                {
                    "id": pending["id"],
                    "reference": pending["reference"],
                    "status": "delivered",
                    "at": format_timestamp(datetime.now(UTC)),
                }
            )
            assert self.receipt_url is not None and self._receipt_secret is not None
            try:
                response = requests.post(
                    self.receipt_url,
                    data=body,
                    headers={
                        "Content-Type": "application/json",
                        signatures.SMS_RECEIPT_SIGNATURE_HEADER: sign_receipt(
                            body, self._receipt_secret
                        ),
                    },
                    timeout=RECEIPT_TIMEOUT_SECONDS,
                )
                outcome = None if response.ok else f"answered {response.status_code}"
            except requests.RequestException as error:
                outcome = type(error).__name__
            if outcome:
                # Real providers give up on receipts too; the sender copes.
                log.warning("could not deliver a receipt", id=pending["id"], reason=outcome)


def _validate_send(body: bytes) -> tuple[dict[str, Any], list[str]]:
    """The send request, or every problem with it (never quoting the text)."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}, ["the body must be JSON in UTF-8"]
    if not isinstance(document, dict):
        return {}, ["the body must be a JSON object"]
    errors = []
    if not isinstance(document.get("to"), str) or not _E164.fullmatch(document["to"]):
        errors.append("to: must be an E.164 number such as +971501234567")
    for field in ("text", "sender", "reference"):
        if not isinstance(document.get(field), str) or not document[field]:
            errors.append(f"{field}: must be a non-empty string")
    if not isinstance(document.get("unicode"), bool):
        errors.append("unicode: must be true or false")
    return document, errors


def query_parameters(target: str) -> dict[str, str]:
    """A request target's query as a dict. A literal '+' stays a '+': these
    are phone numbers and addresses typed into curl, not HTML form data."""
    query = urlsplit(target).query.replace("+", "%2B")
    return dict(parse_qsl(query))


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSmsServer

    def process_request(self, request, client_address) -> None:
        self.fake.connections_accepted += 1  # serve_forever's one thread: no race
        super().process_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    server_version = "FakeSms/1"
    # Keep-alive, as a real provider: a sender may reuse its connections.
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        path = urlsplit(self.path).path
        if path in self.server.fake.pages:
            self._answer_page(path, {})
            return
        self._answer(*self.server.fake._handle_get(path, query_parameters(self.path)))

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        path = urlsplit(self.path).path
        body = self._read_body()
        if body is None:
            return
        if path in self.server.fake.pages:
            self._answer_page(path, dict(parse_qsl(body.decode("utf-8", "replace"))))
        elif path == "/sms":
            answer = self.server.fake._handle_send(self.headers.get("Authorization"), body)
        elif path == "/control":
            answer = self.server.fake._handle_control(body)
        else:
            answer = (404, {"error": "not found"})
        self._answer(*answer)

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True  # the unread body must not be read as a request
            self._answer(411, {"error": "Content-Length is required"})
            return None
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._answer(413, {"error": f"the body must be at most {MAX_BODY_BYTES} bytes"})
            return None
        return self.rfile.read(length)

    def _answer_page(self, path: str, form: Mapping[str, str]) -> None:
        # A browser's query and form: '+' is a space here, as HTML forms send it.
        query = dict(parse_qsl(urlsplit(self.path).query))
        reply = self.server.fake.pages[path](self.command, query, form)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def _answer(self, status: int, document: Any) -> None:
        payload = json.dumps(document, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        # The request line only (never a body); debug, or every test is noisy.
        log.debug("fake sms request", request=format % args)


def run_until_terminated() -> None:
    """Block the main thread until SIGINT or SIGTERM."""
    terminated = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: terminated.set())
    terminated.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The local fake SMS provider (loopback only).")
    parser.add_argument("--port", type=int, default=8026)
    arguments = parser.parse_args(argv)
    configure_logging(service="fake-sms")
    secret = env(SMS_RECEIPT_SECRET_ENV, "")
    server = FakeSmsServer(
        port=arguments.port,
        receipt_url=env(RECEIPT_URL_ENV, "") or None,
        receipt_secret=secret.encode("utf-8") if secret else None,
        api_key=env(SMS_API_KEY_ENV, "") or None,
    ).start()
    try:
        run_until_terminated()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
