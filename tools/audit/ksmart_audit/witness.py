"""A transparency-log witness (C2SP tlog-witness), run by someone other than
the platform: it cosigns a log's checkpoint only after checking the log's
signature and that the checkpoint extends, append-only, the last one it
cosigned for that log. So a log that shows one history to a witness cannot
later show another (a rolled-back, truncated or rewritten one) and have it
cosigned: every cosigned checkpoint of one origin lies on one line of
growth, and no size ever gets two roots.

`Witness.add_checkpoint(body)` is the whole protocol, HTTP left out
(ksmart_audit.witness_server serves it):

    old <size>\\n  <base64 proof hash>\\n ...  \\n  <signed checkpoint note>

answered with a `Reply`: 200 and the cosignature line; 400 malformed (or an
old size above the checkpoint's); 403 not signed by the key the witness
knows for the origin; 404 unknown origin; 409 when `old` is not the size
the witness last cosigned (`text/x.tlog.size`, that size, so the log can
retry from it) or the same size comes with another root; 422 when the
consistency proof fails.

Checking `old` against the record, verifying the proof, recording the new
checkpoint and signing happen under one lock, and the record is on disk
before the answer: two requests cannot interleave into a rollback (the race
the spec describes)."""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ksmart_audit.state_files import ExclusiveLock, read_json, write_json_atomically
from ksmart_common.checkpoint import Checkpoint
from ksmart_common.merkle import HASH_SIZE, ProofError, verify_consistency
from ksmart_common.signed_note import (
    COSIGNATURE_V1,
    ED25519,
    NoteError,
    Signer,
    Verifier,
    open_note,
    parse,
)

MAX_BODY = 64 * 1024
MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    content_type: str = TEXT


@dataclass(frozen=True)
class Cosigned:
    """The witness's record for one log: the latest checkpoint it cosigned."""

    size: int
    root_hash: bytes


class WitnessState:
    """The latest cosigned checkpoint of each origin, kept in one JSON file
    written atomically and fsynced ({origin: {"size", "root"}}). Losing it
    would let the witness be walked back, so back it up (docs/operations.md)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = ExclusiveLock(path)
        self._lock.acquire()
        self._records: dict[str, Cosigned] = {}
        for origin, record in (read_json(path) or {}).items():
            self._records[origin] = Cosigned(record["size"], base64.b64decode(record["root"]))

    def latest(self, origin: str) -> Cosigned | None:
        return self._records.get(origin)

    def record(self, origin: str, cosigned: Cosigned) -> None:
        records = {**self._records, origin: cosigned}
        write_json_atomically(
            self.path,
            {
                name: {"size": entry.size, "root": base64.b64encode(entry.root_hash).decode()}
                for name, entry in records.items()
            },
        )
        self._records = records

    def close(self) -> None:
        self._lock.release()


class Refused(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.body)
        self.reply = reply


def _refuse(status: int, why: str) -> Refused:
    return Refused(Reply(status, why.rstrip("\n") + "\n"))


@dataclass(frozen=True)
class Submission:
    old_size: int
    proof: list[bytes]
    note: str


def parse_submission(body: bytes) -> Submission:
    """The add-checkpoint request body, or Refused(400) saying what is wrong."""
    if len(body) > MAX_BODY:
        raise _refuse(400, f"the request is over {MAX_BODY} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _refuse(400, "the request is not UTF-8") from error
    head, blank, note = text.partition("\n\n")
    if not blank:
        raise _refuse(400, "no blank line between the old size and proof, and the checkpoint")
    lines = head.split("\n")
    old = lines[0]
    if not old.startswith("old ") or not _decimal(old[4:]):
        raise _refuse(400, f"the first line is `old <size>`, not {old!r}")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise _refuse(400, f"a consistency proof has at most {MAX_PROOF_LINES} hashes")
    proof = []
    for line in lines[1:]:
        try:
            node = base64.b64decode(line, validate=True)
        except binascii.Error as error:
            raise _refuse(400, f"a proof line is not base64: {line!r}") from error
        if len(node) != HASH_SIZE:
            raise _refuse(400, f"a proof line is not a {HASH_SIZE}-byte hash: {line!r}")
        proof.append(node)
    return Submission(int(old[4:]), proof, note)


def _decimal(text: str) -> bool:
    return text.isascii() and text.isdigit() and (text == "0" or not text.startswith("0"))


class Witness:
    """Cosigns the checkpoints of the logs it knows (origin -> the log's key)."""

    def __init__(
        self,
        signer: Signer,
        logs: Iterable[Verifier],
        state: WitnessState,
        clock: Callable[[], float] = time.time,
        log_event: Callable[[str], None] = lambda message: None,
    ) -> None:
        if signer.signature_type != COSIGNATURE_V1:
            raise ValueError("a witness cosigns with a cosignature/v1 key (type 0x04)")
        self.signer = signer
        self.logs: dict[str, Verifier] = {}
        for log in logs:
            if log.signature_type != ED25519:
                raise ValueError(f"the log key of {log.name} is not an Ed25519 note key (0x01)")
            self.logs[log.name] = log
        self.state = state
        self.clock = clock
        self.log_event = log_event
        self._lock = threading.Lock()

    def add_checkpoint(self, body: bytes) -> Reply:
        try:
            return self._add(body)
        except Refused as refused:
            self.log_event(f"refused ({refused.reply.status}): {refused.reply.body.strip()}")
            return refused.reply

    def _add(self, body: bytes) -> Reply:
        submission = parse_submission(body)
        try:
            text = parse(submission.note).text
            checkpoint = Checkpoint.from_text(text)
        except NoteError as error:
            raise _refuse(400, f"not a signed checkpoint: {error}") from error
        origin = checkpoint.origin
        log_key = self.logs.get(origin)
        if log_key is None:
            raise _refuse(404, f"this witness does not witness {origin!r}")
        try:
            open_note(submission.note, [log_key])
        except NoteError as error:
            raise _refuse(403, f"not signed by the key of {origin}: {error}") from error
        if submission.old_size > checkpoint.size:
            raise _refuse(
                400, f"old size {submission.old_size} is above the checkpoint's {checkpoint.size}"
            )
        with self._lock:
            self._check_against_record(origin, submission, checkpoint)
            self.state.record(origin, Cosigned(checkpoint.size, checkpoint.root_hash))
            line = self.signer.signature_line(text, int(self.clock()))
        self.log_event(f"cosigned {origin} at size {checkpoint.size}")
        return Reply(200, line)

    def _check_against_record(
        self, origin: str, submission: Submission, checkpoint: Checkpoint
    ) -> None:
        latest = self.state.latest(origin)
        latest_size = latest.size if latest else 0
        if submission.old_size != latest_size:
            raise Refused(Reply(409, f"{latest_size}\n", SIZE_CONTENT_TYPE))
        if latest is None:
            # First sight of this log: nothing to be consistent with yet.
            if submission.proof:
                raise _refuse(400, "the proof from old size 0 must be empty")
            return
        if checkpoint.size == latest.size:
            if checkpoint.root_hash != latest.root_hash or submission.proof:
                raise _refuse(
                    409,
                    f"size {latest.size} was cosigned with root "
                    f"{base64.b64encode(latest.root_hash).decode()}, not this one",
                )
            return
        try:
            verify_consistency(
                latest.size,
                checkpoint.size,
                submission.proof,
                latest.root_hash,
                checkpoint.root_hash,
            )
        except ProofError as error:
            raise _refuse(
                422,
                f"the checkpoint of size {checkpoint.size} is not consistent with the one of "
                f"size {latest.size} cosigned last: {error}",
            ) from error
