"""Signed notes (C2SP signed-note): a text ending in a newline, a blank
line, then one line per signature, `— <key name> base64(key ID || sig)`.
The log signs its checkpoints with plain Ed25519 note signatures (type
0x01); witnesses add timestamped cosignatures (C2SP tlog-cosignature,
type 0x04) over the same text. Keys travel as verifier keys ("vkeys",
`<name>+<key ID hex>+base64(type || public key)`), the form a witness's
operator publishes and a verifier is configured with.

A verifier trusts only the keys it was given: a signature line of an
unknown key is ignored, one of a known key must verify, or the note is
refused (the spec's rules, in open_note)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ksmart_common.ed25519 import raw_public_bytes

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
MAX_SIGNATURES = 32
COSIGNATURE_HEADER = "cosignature/v1\n"


class NoteError(ValueError):
    """A note that is malformed, or not signed as it must be."""


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID: SHA-256(name || 0x0A || type || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"a key name may hold no space or '+': {name!r}")


@dataclass(frozen=True)
class Verifier:
    """A public key a verifier trusts, under its name and signature type."""

    name: str
    signature_type: int
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.signature_type, raw_public_bytes(self.public_key))

    def vkey(self) -> str:
        material = bytes([self.signature_type]) + raw_public_bytes(self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(material).decode()}"

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        try:
            # The base64 key may hold "+" itself: the name and ID may not.
            name, id_hex, encoded = vkey.strip().split("+", 2)
            material = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error) as error:
            raise NoteError(f"not a verifier key: {vkey!r}") from error
        _check_name(name)
        if len(material) != 33 or material[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError(f"not an Ed25519 verifier key: {vkey!r}")
        verifier = cls(name, material[0], Ed25519PublicKey.from_public_bytes(material[1:]))
        if verifier.key_id.hex() != id_hex.lower():
            raise NoteError(f"the key ID of {name} does not match its key")
        return verifier

    def signed_message(self, text: str, signature: bytes) -> tuple[bytes, bytes]:
        """(what was signed, the Ed25519 signature) for a signature's bytes
        after the key ID."""
        if self.signature_type == ED25519:
            return text.encode(), signature
        if len(signature) != 8 + 64:
            raise NoteError(f"a cosignature of {self.name} is not a timestamped signature")
        (timestamp,) = struct.unpack(">Q", signature[:8])
        return cosigned_message(text, timestamp), signature[8:]


@dataclass(frozen=True)
class Signer:
    """A private key that signs notes under its name: a log's key (type
    0x01) or a witness's cosigning key (type 0x04)."""

    name: str
    private_key: Ed25519PrivateKey
    signature_type: int = ED25519

    def __post_init__(self) -> None:
        _check_name(self.name)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.signature_type, self.private_key.public_key())

    def signature_line(self, text: str, timestamp: int | None = None) -> str:
        if self.signature_type == ED25519:
            signature = self.private_key.sign(text.encode())
        else:
            if timestamp is None or not 0 <= timestamp < 2**63:
                raise NoteError("a cosignature needs its time, in seconds since the epoch")
            signed = self.private_key.sign(cosigned_message(text, timestamp))
            signature = struct.pack(">Q", timestamp) + signed
        encoded = base64.b64encode(self.verifier.key_id + signature).decode()
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


def cosigned_message(text: str, timestamp: int) -> bytes:
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{text}".encode()


@dataclass(frozen=True)
class SignatureLine:
    name: str
    key_id: bytes
    signature: bytes
    line: str


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[SignatureLine, ...]

    def timestamp_of(self, verifier: Verifier) -> int | None:
        """When a cosigner cosigned this note (None: it did not)."""
        for line in self.signatures:
            if line.name == verifier.name and line.key_id == verifier.key_id:
                if verifier.signature_type == COSIGNATURE_V1 and len(line.signature) >= 8:
                    return struct.unpack(">Q", line.signature[:8])[0]
        return None

    def serialize(self) -> str:
        return self.text + "\n" + "".join(line.line for line in self.signatures)


def sign(text: str, signer: Signer, timestamp: int | None = None) -> str:
    """A new note: the text with one signature."""
    _check_text(text)
    return text + "\n" + signer.signature_line(text, timestamp)


def add_signature(note: str, signer: Signer, timestamp: int | None = None) -> str:
    """The note with one more signature (a witness's cosignature)."""
    parsed = parse(note)
    line = signer.signature_line(parsed.text, timestamp)
    return parsed.serialize() + line


def parse(note: str) -> Note:
    """The text and signature lines of a note, nothing verified yet."""
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise NoteError("a note holds no control characters but newlines")
    if not note.endswith("\n"):
        raise NoteError("a note ends with a newline")
    # The text ends at the last blank line.
    cut = note.rfind("\n\n")
    if cut < 0:
        raise NoteError("a note has a blank line between its text and its signatures")
    text, lines = note[: cut + 1], note[cut + 2 :].splitlines(keepends=True)
    if not lines:
        raise NoteError("a note has at least one signature")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note has at most {MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"not a signature line: {line!r}")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].rstrip("\n").partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error as error:
            raise NoteError(f"the signature of {name} is not base64") from error
        if len(raw) < 5:
            raise NoteError(f"the signature of {name} is too short")
        _check_name(name)
        signatures.append(SignatureLine(name, raw[:4], raw[4:], line))
    return Note(text, tuple(signatures))


def open_note(note: str, verifiers: list[Verifier]) -> tuple[Note, list[Verifier]]:
    """The note and which of the given keys signed it. Refused (NoteError)
    if a known key's signature fails, or if no known key signed it."""
    parsed = parse(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified = []
    for line in parsed.signatures:
        verifier = known.get((line.name, line.key_id))
        if verifier is None:
            continue  # another's signature: not ours to judge
        message, signature = verifier.signed_message(parsed.text, line.signature)
        try:
            verifier.public_key.verify(signature, message)
        except InvalidSignature as error:
            raise NoteError(f"the signature of {line.name} does not verify") from error
        verified.append(verifier)
    if not verified:
        raise NoteError("no trusted key signed this note")
    return parsed, verified


def _check_text(text: str) -> None:
    if not text.strip() or not text.endswith("\n"):
        raise NoteError("a note's text is not empty and ends with a newline")
