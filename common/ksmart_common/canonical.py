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


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def chain_hash(prev_hash: str, envelope_without_hash: dict[str, Any]) -> str:
    if "hash" in envelope_without_hash:
        raise ValueError("the hash is computed over the envelope without its own hash")
    return sha256_hex(prev_hash.encode("ascii") + canonical_json(envelope_without_hash))


def content_hash(document: Any) -> str:
    """Hash of a document (a catalogue definition, say): its identity forever."""
    return sha256_hex(canonical_json(document))
