"""The citizen's proof, checked in the portal's process (issue 18, item 4):
a file's submission and a certificate's issue are in the public
transparency log. The gateway sends each with its inclusion proof against
the latest signed checkpoint (ksmart_gateway.log_standing); a page that
only repeated "recorded" would prove nothing the platform could not fake,
so this checks, with the kernel's pure code as ksmart-audit does:

- the checkpoint note is signed by the log's key (GET /log/key, kept by
  the portal's HTTP cache) and names that log (its origin);
- the proof's size is the checkpoint's, and the event's stored hash, as a
  leaf at `index`, hashes up the proof to the checkpoint's root.

The result says which of three a page shows: recorded (entry I of the
checkpoint of size S, signed by the platform, with the witnesses'
cosignatures counted: the portal knows no witness keys to check them
against; an auditor's ksmart-audit verify does), not yet (the next
checkpoint adds it), or a proof that failed, never shown as recorded."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ksmart_common import merkle
from ksmart_common.checkpoint import Checkpoint
from ksmart_common.signed_note import NoteError, Verifier, open_note

RECORDED = "recorded"
PENDING = "pending"
FAILED = "failed"


@dataclass(frozen=True)
class LogStanding:
    """What a page says of one event in the log."""

    status: str
    index: int | None = None
    size: int | None = None
    witnesses: int = 0
    reason: str | None = None

    @property
    def recorded(self) -> bool:
        return self.status == RECORDED


def check_proof(proof: Mapping[str, Any] | None, vkey: str | None) -> LogStanding:
    """An event's proof as the gateway sent it (None: not in a checkpoint
    yet), checked against the log's key (its vkey text)."""
    if proof is None:
        return LogStanding(PENDING)
    try:
        if not vkey:
            raise NoteError("the log's key is not known")
        log_key = Verifier.from_vkey(vkey.strip())
        note, _ = open_note(str(proof["checkpoint"]), [log_key])
        checkpoint = Checkpoint.from_text(note.text)
        if checkpoint.origin != log_key.name:
            raise NoteError(f"the checkpoint is of another log: {checkpoint.origin}")
        index, size = int(proof["index"]), int(proof["size"])
        if size != checkpoint.size:
            raise merkle.ProofError(f"a proof for {size} leaves, a checkpoint of {checkpoint.size}")
        merkle.verify_inclusion(
            index,
            size,
            merkle.leaf_hash(bytes.fromhex(str(proof["event_hash"]))),
            [base64.b64decode(value, validate=True) for value in proof["hashes"]],
            checkpoint.root_hash,
        )
    except (KeyError, TypeError, ValueError, binascii.Error) as error:
        # NoteError and ProofError are ValueErrors too.
        return LogStanding(FAILED, reason=str(error) or type(error).__name__)
    cosignatures = sum(1 for line in note.signatures if line.name != log_key.name)
    return LogStanding(RECORDED, index=index, size=size, witnesses=cosignatures)


def standing(
    transparency: Mapping[str, Any] | None, name: str, log_key: Callable[[], str | None]
) -> LogStanding | None:
    """The named event's standing from an answer's `transparency` (None
    when the gateway could not ask the log: the page then says nothing);
    the log's key is fetched only when there is a proof to check."""
    if not isinstance(transparency, Mapping):
        return None
    proof = transparency.get(name)
    return check_proof(proof, log_key() if proof is not None else None)
