"""A transparency log's checkpoint (C2SP tlog-checkpoint): the note text
that states the log's origin, its size and its root hash, one a line,

    ksmart.example/kerala-events
    1234
    base64(root hash)

optionally followed by extension lines, signed as a note by the log
(ksmart_common.signed_note) and cosigned by witnesses."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from ksmart_common.merkle import HASH_SIZE
from ksmart_common.signed_note import NoteError


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteError("a checkpoint's origin is one non-empty line")
        if self.size < 0:
            raise NoteError("a tree's size is not negative")
        if len(self.root_hash) != HASH_SIZE:
            raise NoteError(f"a root hash is {HASH_SIZE} bytes")

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "".join(f"{line}\n" for line in [*lines, *self.extensions])

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or "" in lines[:-1]:
            raise NoteError("a checkpoint is an origin, a size and a root hash, a line each")
        origin, size, root = lines[0], lines[1], lines[2]
        if not size.isdigit() or (size != "0" and size.startswith("0")):
            raise NoteError(f"a tree's size is a decimal number: {size!r}")
        try:
            root_hash = base64.b64decode(root, validate=True)
        except binascii.Error as error:
            raise NoteError("a root hash is base64") from error
        return cls(origin, int(size), root_hash, tuple(lines[3:-1]))
