"""The one place that turns an event into bytes and computes its hash.

Canonical JSON here is: keys sorted, no insignificant white space, UTF-8 text
(not \\u-escaped), integers and strings as JSON writes them. An auditor can
reproduce it in any language: `json.dumps(obj, sort_keys=True,
separators=(",", ":"), ensure_ascii=False).encode("utf-8")` in Python.

Each file's events form a chain: hash = sha256(prev_hash + canonical JSON of
the envelope without its `hash`). The first event's prev_hash is GENESIS_HASH.
Changing, removing or reordering any stored event breaks every later link.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS_HASH = "0" * 64


_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_text(value: Any) -> str:
    return _encoder.encode(value)


def canonical_json(value: Any) -> bytes:
    return canonical_text(value).encode("utf-8")


def sha256_hex(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def chain_hash(prev_hash: str, envelope_without_hash: dict[str, Any]) -> str:
    if "hash" in envelope_without_hash:
        raise ValueError("the hash is computed over the envelope without its own hash")
    return sha256_hex(prev_hash.encode("ascii") + canonical_json(envelope_without_hash))


# The envelope's keys in sorted order, as canonical JSON writes them; the
# values are filled in by envelope_hash. Its equality with chain_hash over the
# whole document is a property test (tests/unit/test_envelope.py).
_ENVELOPE_TEMPLATE = (
    '{{"data":{data},"event_id":{event_id},"event_type":{event_type},'
    '"global_position":{global_position},"metadata":{metadata},"prev_hash":{prev_hash},'
    '"recorded_at":{recorded_at},"schema_version":{schema_version},'
    '"stream_id":{stream_id},"stream_version":{stream_version}}}'
)


def envelope_hash(
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
    """chain_hash of an envelope, from its parts, with `data` and `metadata`
    already in canonical text (each computed once per event or per append
    rather than once more inside the whole document)."""
    document = _ENVELOPE_TEMPLATE.format(
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
    return sha256_hex(prev_hash.encode("ascii") + document.encode("utf-8"))


def content_hash(document: Any) -> str:
    """Hash of a document (a catalogue definition, say): its identity forever."""
    return sha256_hex(canonical_json(document))
