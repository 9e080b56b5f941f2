"""`ksmart-audit witness`: the witness (ksmart_audit.witness) over HTTP, with
the standard library's ThreadingHTTPServer: one small endpoint needs no
framework, and the auditor's tool installs with nothing more.

    POST /add-checkpoint   C2SP tlog-witness
    GET  /                 the witness's verifier key (type 0x04), to publish

Its cosigning key is an Ed25519 PEM from a file (--key-file) or the
environment (KSMART_WITNESS_KEY); `ksmart-audit witness-keygen` makes one
and prints the verifier key to publish."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ksmart_audit.witness import MAX_BODY, TEXT, Witness
from ksmart_common.ed25519 import generate_private_key, private_key_from_pem, private_key_to_pem
from ksmart_common.signed_note import COSIGNATURE_V1, NoteError, Signer, Verifier

KEY_ENV = "KSMART_WITNESS_KEY"
NAME_ENV = "KSMART_WITNESS_NAME"
LOGS_ENV = "KSMART_WITNESS_LOGS"
STATE_ENV = "KSMART_WITNESS_STATE"


class WitnessConfigError(Exception):
    """The witness cannot start as configured (exit status 2)."""


def load_signer(name: str | None, key_file: str | None) -> Signer:
    name = name or os.environ.get(NAME_ENV)
    if not name:
        raise WitnessConfigError(f"the witness needs its name: --name or {NAME_ENV}")
    if key_file:
        try:
            pem = Path(key_file).read_text()
        except OSError as error:
            raise WitnessConfigError(f"cannot read the key file: {error}") from error
    else:
        pem = os.environ.get(KEY_ENV, "")
        if not pem.strip():
            raise WitnessConfigError(f"the witness needs its key: --key-file or {KEY_ENV}")
    try:
        return Signer(name, private_key_from_pem(pem), COSIGNATURE_V1)
    except (ValueError, TypeError, NoteError) as error:
        raise WitnessConfigError(f"not an Ed25519 private key in PEM: {error}") from error


def load_logs(vkeys: Sequence[str]) -> list[Verifier]:
    """The logs witnessed, each by its verifier key (whose name is its origin)."""
    texts = list(vkeys) or [
        text for text in os.environ.get(LOGS_ENV, "").split(",") if text.strip()
    ]
    if not texts:
        raise WitnessConfigError(f"which logs? --log VKEY (repeated) or {LOGS_ENV}")
    try:
        return [Verifier.from_vkey(text) for text in texts]
    except NoteError as error:
        raise WitnessConfigError(str(error)) from error


def generate_key(name: str, output: Path) -> str:
    """A new cosigning key written to `output` (owner-only); its vkey."""
    private_key = generate_private_key()
    signer = Signer(name, private_key, COSIGNATURE_V1)
    try:
        handle = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise WitnessConfigError(f"cannot create {output}: {error}") from error
    with os.fdopen(handle, "w") as out:
        out.write(private_key_to_pem(private_key))
    return signer.verifier.vkey()


def log_line(message: str) -> None:
    record = {"time": datetime.now(UTC).isoformat(), "service": "witness", "message": message}
    print(json.dumps(record), file=sys.stderr, flush=True)


def make_server(witness: Witness, host: str, port: int) -> ThreadingHTTPServer:
    vkey = witness.signer.verifier.vkey() + "\n"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the spec asks

        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            if self.path.rstrip("/") != "/add-checkpoint":
                self._send(404, "no such endpoint\n")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._send(411, "a Content-Length is needed\n")
                return
            if not 0 <= length <= MAX_BODY:
                self._send(400, f"the request is over {MAX_BODY} bytes\n")
                self.close_connection = True
                return
            reply = witness.add_checkpoint(self.rfile.read(length))
            self._send(reply.status, reply.body, reply.content_type)

        def do_GET(self) -> None:  # noqa: N802
            if self.path in ("/", "/key"):
                self._send(200, vkey)
            elif self.path == "/health":
                self._send(200, "ok\n")
            else:
                self._send(404, "no such endpoint\n")

        def _send(self, status: int, body: str, content_type: str = TEXT) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log_line(f"{self.address_string()} {format % args}")

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve(witness: Witness, host: str, port: int) -> None:
    server = make_server(witness, host, port)
    bound_host, bound_port = server.server_address[:2]
    witnessed = ", ".join(sorted(witness.logs))
    log_line(
        f"witness {witness.signer.verifier.vkey()} listening on {bound_host}:{bound_port}, "
        f"witnessing {witnessed}"
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
        witness.state.close()
