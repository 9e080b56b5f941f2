"""The one place that turns an event into bytes and computes its hash.

Canonical JSON here is: keys sorted, no insignificant white space, UTF-8 text
(not \\u-escaped), integers and strings as JSON writes them. An auditor can
reproduce it in any language: `json.dumps(obj, sort_keys=True,
separators=(",", ":"), ensure_ascii=False).encode("utf-8")` in Python.

Each file's events form a chain: hash = sha256(prev_hash + canonical JSON of
the envelope without its `hash`). The first event's prev_hash is GENESIS_HASH.
Changing, removing or reordering any stored event breaks every later link.

A verifier hashes the text as stored, never a re-encoding of what it parses
to: many texts parse to the same values (a key written twice, `1.0` where
`1` was, the same number to most JSON readers, `\\u0061` for `a`, spaces,
another key order), and hashing a re-encoding would let any of them stand in
for the text that was sealed. So a text is checked to be canonical
(`parse_canonical`, `why_not_canonical`: parsed, encoded again, compared
byte for byte) and its own bytes are hashed (`text_hash`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

GENESIS_HASH = "0" * 64


_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_text(value: Any) -> str:
    return _encoder.encode(value)


def canonical_json(value: Any) -> bytes:
    return canonical_text(value).encode("utf-8")


class NotCanonical(ValueError):
    """A text that is not the canonical JSON of the value it parses to."""


class DuplicateKey(NotCanonical):
    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} appears twice in one object")
        self.key = key


def parse_canonical(text: str) -> Any:
    """The value of a canonical JSON text; NotCanonical (saying why) for any
    other text, even one that parses to the same value."""
    # Parsed without a hook (json's C scanner alone): a text with a key
    # written twice cannot equal the encoding of what it parses to, which
    # holds each key once, so the comparison below refuses it too; only then
    # is it parsed again, slowly, to name the key (why_not_canonical).
    try:
        value = json.loads(text)
    except ValueError as error:
        raise NotCanonical(f"not JSON: {error}") from error
    try:
        canonical = canonical_text(value)
    except ValueError as error:
        raise NotCanonical("it holds a number JSON cannot carry (NaN or an infinity)") from error
    if canonical == text:
        return value
    duplicate = _duplicate_key(text)
    if duplicate is not None:
        raise duplicate
    raise NotCanonical(why_not_canonical(text, canonical) or "it is not canonical JSON")


def why_not_canonical(text: str, canonical: str) -> str | None:
    """Why `text` is not `canonical`, the canonical text of the value it
    parses to; None when they are the same, byte for byte."""
    if text == canonical:
        return None
    duplicate = _duplicate_key(text)
    if duplicate is not None:
        return str(duplicate)
    at = next(
        (
            i
            for i, (ours, theirs) in enumerate(zip(text, canonical, strict=False))
            if ours != theirs
        ),
        min(len(text), len(canonical)),
    )
    return (
        f"at character {at} it reads {_around(text, at)!r} "
        f"where canonical JSON writes {_around(canonical, at)!r}"
    )


def _around(text: str, at: int, width: int = 12) -> str:
    return text[max(0, at - width) : at + width]


def _refuse_duplicate_keys(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise DuplicateKey(key)
        value[key] = item
    return value


def _duplicate_key(text: str) -> DuplicateKey | None:
    """Asked only of a text already found not canonical, to say why."""
    try:
        json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except DuplicateKey as duplicate:
        return duplicate
    except ValueError:
        return None
    return None


def sha256_hex(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def text_hash(prev_hash: str, text: str) -> str:
    """The chain hash of an event whose envelope (without its hash) is
    `text`: the text's own UTF-8 bytes, exactly as given."""
    return sha256_hex(prev_hash.encode("ascii") + text.encode("utf-8"))


def chain_hash(prev_hash: str, envelope_without_hash: dict[str, Any]) -> str:
    if "hash" in envelope_without_hash:
        raise ValueError("the hash is computed over the envelope without its own hash")
    return text_hash(prev_hash, canonical_text(envelope_without_hash))


# The envelope's keys in sorted order, as canonical JSON writes them; the
# values are filled in by envelope_hash. Its equality with chain_hash over the
# whole document is a property test (tests/unit/test_envelope.py).
_ENVELOPE_TEMPLATE = (
    '{{"data":{data},"event_id":{event_id},"event_type":{event_type},'
    '"global_position":{global_position},"metadata":{metadata},"prev_hash":{prev_hash},'
    '"recorded_at":{recorded_at},"schema_version":{schema_version},'
    '"stream_id":{stream_id},"stream_version":{stream_version}}}'
)


def envelope_text(
    prev_hash: str,
    *,
    event_id: str,
    stream_id: str,
    stream_version: int,
    global_position: int,
    event_type: str,
    schema_version: int,
    data_text: str,
    metadata_text: str,
    recorded_at: str,
) -> str:
    """The canonical text of an envelope without its hash, from its parts,
    with `data` and `metadata` given as text: spliced in verbatim (their
    canonical text, computed once per event or per append, or the text a
    row stores)."""
    return _ENVELOPE_TEMPLATE.format(
        data=data_text,
        event_id=_encoder.encode(event_id),
        event_type=_encoder.encode(event_type),
        global_position=int(global_position),
        metadata=metadata_text,
        prev_hash=_encoder.encode(prev_hash),
        recorded_at=_encoder.encode(recorded_at),
        schema_version=int(schema_version),
        stream_id=_encoder.encode(stream_id),
        stream_version=int(stream_version),
    )


def envelope_hash(prev_hash: str, **parts: Any) -> str:
    """chain_hash of an envelope, from its parts (as envelope_text takes them)."""
    return text_hash(prev_hash, envelope_text(prev_hash, **parts))


def content_hash(document: Any) -> str:
    """Hash of a document (a catalogue definition, say): its identity forever."""
    return sha256_hex(canonical_json(document))
