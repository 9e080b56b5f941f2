"""The event envelope: defined once, used by the store, the relay, every
consumer and the auditor's tools.

An `Envelope` is immutable. `EnvelopeSchema` is its only serialisation path to
and from JSON (message bodies, RPC answers, audit exports); `to_json` and
`from_json` wrap it. The hash is computed over `to_json(envelope)` minus the
`hash` and `signature` keys, so whatever an auditor receives as JSON is
exactly what was hashed; the signature (event_signatures.py) seals the hash.

A `StoredEvent` is what verification works on: an envelope with the exact
text its hash covers, as the store holds it (the row's `data` and `metadata`
text spliced in verbatim, never re-encoded). Its hash is recomputed from that
text's bytes, and the text is checked to be the canonical encoding of the
envelope (canonical.py says why both). Audit exports carry the text in each
event's `canonical` field (`to_document`, `read_document`), so an offline
verifier hashes the same bytes: sha256(prev_hash + canonical).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate

from ksmart_common.canonical import (
    GENESIS_HASH,
    canonical_text,
    envelope_text,
    text_hash,
    why_not_canonical,
)

STREAM_PREFIX = "file-"


def file_stream_id(file_id: uuid.UUID | str) -> str:
    return f"{STREAM_PREFIX}{uuid.UUID(str(file_id))}"


def file_id_of(stream_id: str) -> str:
    if not stream_id.startswith(STREAM_PREFIX):
        raise ValueError(f"not a file stream: {stream_id!r}")
    return stream_id[len(STREAM_PREFIX) :]


def format_timestamp(moment: datetime) -> str:
    """UTC, always with microseconds, so the text (and the hash) is stable."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    # isoformat with fixed microseconds is several times faster than strftime.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class UtcTimestamp(fields.Field):
    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format_timestamp(value)

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as error:
            raise ValidationError("not an ISO 8601 timestamp") from error
        if moment.tzinfo is None:
            raise ValidationError("timestamp must carry a time zone")
        return moment.astimezone(UTC)


REQUIRED_METADATA = ("actor_id", "actor_roles", "correlation_id")


def _metadata_is_complete(metadata: dict[str, Any]) -> None:
    """Who caused an event and in answer to what. Metadata is kept verbatim
    (a schema would drop or add keys, and the hash covers every key), so
    only the keys every event must have are checked: actor_id, actor_roles,
    correlation_id; causation_id, request_id and the actor's local_body
    are usual too."""
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ValidationError(f"missing {', '.join(missing)}")


@dataclass(frozen=True)
class NewEvent:
    """An event a command decided on, before the store gives it a place."""

    event_type: str
    data: dict[str, Any]
    schema_version: int = 1
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class Envelope:
    event_id: uuid.UUID
    stream_id: str
    stream_version: int
    global_position: int
    event_type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime
    prev_hash: str
    hash: str
    # "<kid>:<signature>" by the store's writer over the hash
    # (event_signatures.py); None for an event stored before events were
    # signed. Outside what the hash covers: it seals the hash.
    signature: str | None = None

    def with_hash(self) -> Envelope:
        """This envelope with `hash` computed from everything else."""
        return replace(self, hash=compute_hash(self))

    def hash_is_valid(self) -> bool:
        return compute_hash(self) == self.hash


class EnvelopeSchema(Schema):
    event_id = fields.UUID(required=True)
    stream_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    stream_version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    global_position = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    event_type = fields.String(required=True, validate=validate.Length(min=1, max=100))
    schema_version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    data = fields.Dict(required=True)
    metadata = fields.Dict(required=True, validate=_metadata_is_complete)
    recorded_at = UtcTimestamp(required=True)
    prev_hash = fields.String(required=True, validate=validate.Length(equal=64))
    hash = fields.String(required=True, validate=validate.Length(equal=64))
    signature = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=200)
    )

    @post_load
    def make_envelope(self, values: dict, **kwargs) -> Envelope:
        return Envelope(**values)


_schema = EnvelopeSchema()


def to_json(envelope: Envelope) -> dict[str, Any]:
    """The envelope as JSON values. Written out by hand because it runs for
    every event hashed, stored or sent; tests/unit/test_envelope.py proves it
    equal to EnvelopeSchema().dump for any envelope."""
    return {
        "event_id": str(envelope.event_id),
        "stream_id": envelope.stream_id,
        "stream_version": envelope.stream_version,
        "global_position": envelope.global_position,
        "event_type": envelope.event_type,
        "schema_version": envelope.schema_version,
        "data": envelope.data,
        "metadata": envelope.metadata,
        "recorded_at": format_timestamp(envelope.recorded_at),
        "prev_hash": envelope.prev_hash,
        "hash": envelope.hash,
        "signature": envelope.signature,
    }


def from_json(document: dict[str, Any]) -> Envelope:
    """Raises marshmallow.ValidationError naming every bad field at once."""
    return _schema.load(document)


def hashed_text(
    envelope: Envelope, data_text: str | None = None, metadata_text: str | None = None
) -> str:
    """The text an envelope's hash covers (after its prev_hash): the
    canonical JSON of the envelope without its hash. data_text /
    metadata_text: the text of its data and metadata when the caller has it
    (computed once per append, or as a row stores it), taken verbatim."""
    return envelope_text(
        envelope.prev_hash,
        event_id=str(envelope.event_id),
        stream_id=envelope.stream_id,
        stream_version=envelope.stream_version,
        global_position=envelope.global_position,
        event_type=envelope.event_type,
        schema_version=envelope.schema_version,
        data_text=data_text if data_text is not None else canonical_text(envelope.data),
        metadata_text=(
            metadata_text if metadata_text is not None else canonical_text(envelope.metadata)
        ),
        recorded_at=format_timestamp(envelope.recorded_at),
    )


def compute_hash(
    envelope: Envelope, data_text: str | None = None, metadata_text: str | None = None
) -> str:
    """The envelope's chain hash (data_text, metadata_text: as hashed_text)."""
    return text_hash(envelope.prev_hash, hashed_text(envelope, data_text, metadata_text))


# An audit export's event: the envelope's fields, and this one holding the
# exact text its hash covers.
CANONICAL_KEY = "canonical"
_ENVELOPE_KEYS = tuple(EnvelopeSchema().fields)
# Not in the text the hash covers: the hash itself, and the signature over it.
_UNHASHED = frozenset({"hash", "signature"})


@dataclass(frozen=True)
class StoredEvent:
    """An event with the exact text its hash covers, as stored."""

    envelope: Envelope
    text: str

    @classmethod
    def from_row(cls, envelope: Envelope, data_text: str, metadata_text: str) -> StoredEvent:
        """An event store row: its envelope (data and metadata parsed from
        the row's text) and that text, which the hashed text holds verbatim."""
        return cls(envelope, hashed_text(envelope, data_text, metadata_text))

    @classmethod
    def of(cls, envelope: Envelope) -> StoredEvent:
        """An event made in this process: its text is its canonical encoding."""
        return cls(envelope, hashed_text(envelope))

    def recomputed_hash(self) -> str:
        """The hash of the stored text's own bytes."""
        return text_hash(self.envelope.prev_hash, self.text)

    def hash_is_valid(self) -> bool:
        return self.recomputed_hash() == self.envelope.hash

    def not_canonical(self) -> str | None:
        """Why the stored text is not the canonical encoding of the envelope
        it parses to (a key twice, another escape, spacing, key order, number
        or timestamp spelling); None when it is, byte for byte."""
        try:
            canonical = hashed_text(self.envelope)
        except ValueError:
            return "it holds a number JSON cannot carry (NaN or an infinity)"
        return why_not_canonical(self.text, canonical)


def to_document(event: StoredEvent) -> dict[str, Any]:
    """An audit export's event: the envelope as JSON, and `canonical`, the
    stored text its hash covers, carried verbatim."""
    return {**to_json(event.envelope), CANONICAL_KEY: event.text}


def read_document(document: Mapping[str, Any]) -> tuple[StoredEvent, list[str]]:
    """An audit export's event, as its `canonical` text says (and its hash):
    the event, and the envelope fields the document shows otherwise than
    that text does (every one is to be believed only as hashed).

    Raises ValidationError (the text is no envelope) or ValueError (no
    text, or no JSON object)."""
    if not isinstance(document, Mapping):
        raise ValueError("not a JSON object")
    text = document.get(CANONICAL_KEY)
    if not isinstance(text, str):
        raise ValueError(f"it carries no `{CANONICAL_KEY}` text, the stored text its hash covers")
    sealed = json.loads(text)
    if not isinstance(sealed, dict):
        raise ValueError(f"its `{CANONICAL_KEY}` text is not a JSON object")
    if "hash" in sealed:
        raise ValueError(
            f"its `{CANONICAL_KEY}` text holds a hash: it covers the envelope without one"
        )
    if "signature" in sealed:
        raise ValueError(f"its `{CANONICAL_KEY}` text holds a signature: it seals the hash")
    unhashed = {key: document.get(key) for key in _UNHASHED}
    event = StoredEvent(from_json({**sealed, **unhashed}), text)
    shown = to_json(event.envelope)
    differing = [
        key
        for key in _ENVELOPE_KEYS
        if key not in _UNHASHED and _encoded(document.get(key)) != _encoded(shown[key])
    ]
    return event, differing


def _encoded(value: Any) -> str | None:
    """Compared as canonical text, so that 1.0 is not taken for 1."""
    try:
        return canonical_text(value)
    except (TypeError, ValueError):
        return None


def verify_chain(events: Sequence[Envelope | StoredEvent]) -> list[str]:
    """Every problem in one stream's chain, in order; empty when it verifies.

    Checks that versions run 1, 2, 3 ... without a gap, that each event links
    to the one before, and that each hash matches the event's stored text,
    which must be canonical. An Envelope (made in this process, with no
    stored text) is checked as its canonical encoding.
    """
    problems: list[str] = []
    expected_prev = GENESIS_HASH
    for expected_version, event in enumerate(events, start=1):
        stored = event if isinstance(event, StoredEvent) else StoredEvent.of(event)
        envelope = stored.envelope
        where = f"{envelope.stream_id} v{envelope.stream_version}"
        if envelope.stream_version != expected_version:
            problems.append(
                f"{where}: expected version {expected_version} (missing or reordered event)"
            )
        if envelope.prev_hash != expected_prev:
            problems.append(f"{where}: prev_hash does not link to the event before")
        if not stored.hash_is_valid():
            problems.append(f"{where}: hash does not match the event's content (altered)")
        reason = stored.not_canonical()
        if reason is not None:
            problems.append(f"{where}: the stored text is not canonical JSON ({reason})")
        expected_prev = envelope.hash
    return problems
