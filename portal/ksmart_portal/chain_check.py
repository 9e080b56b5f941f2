"""The auditor's page checks a file's hash chain itself, in the portal's
process, rather than showing the gateway's word for it: a page that only
repeated "verified" would prove nothing the platform could not fake.

Each event's hash is recomputed from the exact text the store holds for it
(its `canonical` field), with the kernel's one path for that
(ksmart_common.envelope.read_document and StoredEvent), exactly as the
ksmart-audit tool does offline; the text must be canonical JSON, and the
fields shown beside it the same as it says. The result
is per event, so the page can say which event fails and why; the
ksmart_common.envelope.verify_chain the gateway uses answers in English
sentences for the whole stream, which a page in two languages cannot show.

Events carry no signatures of their own (an event's author is in its
metadata, sealed by the chain, not signed), so there are none to check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError

from ksmart_common.canonical import GENESIS_HASH
from ksmart_common.envelope import Envelope, StoredEvent, file_stream_id, read_document

# What can be wrong with one event, each worded on the page (audit_pages).
NOT_AN_EVENT = "not_an_event"
OTHER_FILE = "other_file"
OUT_OF_SEQUENCE = "out_of_sequence"
UNLINKED = "unlinked"
ALTERED = "altered"
NOT_CANONICAL = "not_canonical"
OUT_OF_ORDER = "out_of_order"


@dataclass(frozen=True)
class EventCheck:
    """One event as read, and what is wrong with it (nothing: it verifies)."""

    document: Mapping[str, Any]
    expected_version: int
    problems: tuple[str, ...]
    recomputed_hash: str | None = None

    @property
    def verified(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ChainCheck:
    file_id: str
    events: list[EventCheck] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        """Every event verifies, and there is at least one."""
        return bool(self.events) and all(event.verified for event in self.events)

    @property
    def failing(self) -> list[EventCheck]:
        return [event for event in self.events if not event.verified]


def check_chain(file_id: str, documents: Sequence[Any]) -> ChainCheck:
    """Each event of one file, as the gateway sent them in version order:
    a well-formed envelope of this file's stream, numbered 1, 2, 3 without a
    gap, its global position after the one before's, linking to the stored
    hash of the event before (the first to 64 zeros), and its stored hash
    the one its content hashes to now."""
    stream_id = file_stream_id(file_id)
    checked: list[EventCheck] = []
    previous: Envelope | None = None
    for expected_version, document in enumerate(documents, start=1):
        read = _read(document)
        if read is None:
            checked.append(EventCheck(_mapping(document), expected_version, (NOT_AN_EVENT,)))
            continue
        event, shown_otherwise = read
        checked.append(
            _check_event(document, event, shown_otherwise, stream_id, expected_version, previous)
        )
        previous = event.envelope
    return ChainCheck(file_id, checked)


def _check_event(
    document: Mapping[str, Any],
    event: StoredEvent,
    shown_otherwise: list[str],
    stream_id: str,
    expected_version: int,
    previous: Envelope | None,
) -> EventCheck:
    envelope = event.envelope
    problems = []
    if envelope.stream_id != stream_id:
        problems.append(OTHER_FILE)
    if envelope.stream_version != expected_version:
        problems.append(OUT_OF_SEQUENCE)
    if previous is not None and envelope.global_position <= previous.global_position:
        problems.append(OUT_OF_ORDER)
    # The stored hash of the event before, right or wrong, is what this one
    # must link to: one altered event is one failure, not a broken rest.
    if envelope.prev_hash != (previous.hash if previous is not None else GENESIS_HASH):
        problems.append(UNLINKED)
    recomputed = event.recomputed_hash()
    if recomputed != envelope.hash:
        problems.append(ALTERED)
    if shown_otherwise or event.not_canonical() is not None:
        problems.append(NOT_CANONICAL)
    return EventCheck(document, expected_version, tuple(problems), recomputed)


def _read(document: Any) -> tuple[StoredEvent, list[str]] | None:
    try:
        return read_document(document)
    except (ValidationError, TypeError, ValueError, AttributeError):
        return None


def _mapping(document: Any) -> Mapping[str, Any]:
    return document if isinstance(document, Mapping) else {}
