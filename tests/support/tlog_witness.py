"""A minimal C2SP tlog-witness for tests: one log it knows by its key, the
latest checkpoint it cosigned (which a test may seed, as a witness that
cosigned before would hold), and add-checkpoint answered as the spec says
(409 with its size, 422 for a bad proof, 403 for a bad signature)."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ksmart_common import ed25519, merkle
from ksmart_common.checkpoint import Checkpoint
from ksmart_common.signed_note import COSIGNATURE_V1, NoteError, Signer, Verifier, open_note


@dataclass
class FakeWitness:
    log_key: Verifier
    name: str = "witness.test/w1"
    size: int = 0
    root_hash: bytes = merkle.EMPTY_ROOT
    requests: list[int] = field(default_factory=list)  # each request's old size
    cosigned: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.signer = Signer(self.name, ed25519.generate_private_key(), COSIGNATURE_V1)
        self.lock = threading.Lock()

    @property
    def vkey(self) -> str:
        return self.signer.verifier.vkey()

    def add_checkpoint(self, body: str) -> tuple[int, str, str]:
        """(status, content type, answer)."""
        head, _, note = body.partition("\n\n")
        lines = head.split("\n")
        if not lines[0].startswith("old ") or not lines[0][4:].isdigit():
            return 400, "text/plain", "no old size\n"
        old = int(lines[0][4:])
        try:
            proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
            parsed, _ = open_note(note, [self.log_key])
        except NoteError:
            return 403, "text/plain", "not signed by the log's key\n"
        except ValueError:
            return 400, "text/plain", "a proof line is not base64\n"
        checkpoint = Checkpoint.from_text(parsed.text)
        with self.lock:  # checked and updated at once, as the spec asks
            self.requests.append(old)
            if old != self.size:
                return 409, "text/x.tlog.size", f"{self.size}\n"
            try:
                merkle.verify_consistency(
                    old, checkpoint.size, proof, self.root_hash, checkpoint.root_hash
                )
            except merkle.ProofError as error:
                return 422, "text/plain", f"{error}\n"
            self.size, self.root_hash = checkpoint.size, checkpoint.root_hash
            self.cosigned.append(checkpoint.size)
        return 200, "text/plain", self.signer.signature_line(parsed.text, int(time.time()))


def serve(witness: FakeWitness) -> tuple[ThreadingHTTPServer, str]:
    """The witness on a free loopback port: (server, base URL)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            if self.path != "/add-checkpoint":
                self.send_error(404)
                return
            length = int(self.headers.get("Content-Length", 0))
            status, content_type, answer = witness.add_checkpoint(self.rfile.read(length).decode())
            data = answer.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"
