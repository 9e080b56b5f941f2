"""A transparency log in memory, for tests of its witnesses and auditors:
leaves (random stored hashes, hex, as the events table keeps them) in a
MemoryTree, checkpoints signed with a key of its own, consistency proofs,
and add-checkpoint requests as the log sends them to a witness."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from ksmart_common import ed25519, signed_note
from ksmart_common.checkpoint import Checkpoint
from ksmart_common.merkle import MemoryTree, leaf_hash
from ksmart_common.signed_note import COSIGNATURE_V1, ED25519, Signer

ORIGIN = "ksmart.test/events"


def stored_hashes(count: int) -> list[str]:
    return [os.urandom(32).hex() for _ in range(count)]


def new_signer(name: str, kind: int = ED25519) -> Signer:
    return Signer(name, ed25519.generate_private_key(), kind)


def new_witness_signer(name: str = "witness.test/w1") -> Signer:
    return new_signer(name, COSIGNATURE_V1)


@dataclass
class FakeLog:
    hashes: list[str] = field(default_factory=list)
    origin: str = ORIGIN
    signer: Signer | None = None

    def __post_init__(self) -> None:
        if self.signer is None:
            self.signer = new_signer(self.origin)

    @property
    def tree(self) -> MemoryTree:
        return MemoryTree(leaf_hash(bytes.fromhex(h)) for h in self.hashes)

    def append(self, count: int) -> None:
        self.hashes.extend(stored_hashes(count))

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        size = len(self.hashes) if size is None else size
        return Checkpoint(self.origin, size, self.tree.root(size))

    def note(self, size: int | None = None, cosigners: Sequence[Signer] = (), at: int = 0) -> str:
        note = signed_note.sign(self.checkpoint(size).text(), self.signer)
        for cosigner in cosigners:
            note = signed_note.add_signature(note, cosigner, timestamp=at)
        return note

    def event_proof(self, index: int, cosigners: Sequence[Signer] = ()) -> dict:
        """Leaf `index`'s proof against the latest checkpoint, as the gateway
        sends a file's or a certificate's (ksmart_gateway.log_standing)."""
        size = len(self.hashes)
        return {
            "index": index,
            "size": size,
            "hashes": [base64.b64encode(h).decode() for h in self.tree.inclusion_proof(index)],
            "global_position": index + 1,
            "checkpoint": self.note(size, cosigners),
            "event_hash": self.hashes[index],
        }

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        return self.tree.consistency_proof(old_size, new_size)

    def add_checkpoint_body(self, old_size: int, size: int | None = None) -> bytes:
        size = len(self.hashes) if size is None else size
        proof = self.consistency(old_size, size) if 0 < old_size <= size else []
        return request_body(old_size, proof, self.note(size))


def request_body(old_size: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = [f"old {old_size}"] + [base64.b64encode(node).decode() for node in proof]
    return ("\n".join(lines) + "\n\n" + note).encode()
