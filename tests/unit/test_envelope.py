"""The envelope's one serialisation path and the hash chain an auditor checks."""

import hashlib
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from ksmart_common.canonical import GENESIS_HASH, canonical_json, chain_hash
from ksmart_common.envelope import (
    Envelope,
    EnvelopeSchema,
    NewEvent,
    compute_hash,
    format_timestamp,
    from_json,
    to_json,
    verify_chain,
)
from tests.support.memory_store import InMemoryEventStore

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def chain(length: int, data=None) -> list[Envelope]:
    """A stream of `length` events, sealed as the store seals them."""
    store = InMemoryEventStore(
        clock=datetime(2026, 11, 29, 9, 0, 0, 123, tzinfo=UTC), tick=timedelta(seconds=1)
    )
    metadata = {"actor_id": "a", "actor_roles": ["clerk"], "correlation_id": "c"}
    for version in range(1, length + 1):
        event = NewEvent("FileVerified", data if data is not None else {"n": version})
        store.append("file-1", [event], metadata=metadata)
    return store.log


def test_an_untouched_chain_verifies():
    assert verify_chain(chain(5)) == []


def test_an_altered_event_is_found():
    events = chain(4)
    events[2] = replace(events[2], data={"n": 99})
    assert verify_chain(events) == ["file-1 v3: hash does not match the event's content (altered)"]


def test_a_deleted_event_is_found():
    events = chain(4)
    del events[1]
    problems = verify_chain(events)
    assert "file-1 v3: expected version 2 (missing or reordered event)" in problems
    assert "file-1 v3: prev_hash does not link to the event before" in problems


def test_reordered_events_are_found():
    events = chain(4)
    events[1], events[2] = events[2], events[1]
    assert len(verify_chain(events)) >= 2


def test_a_rehashed_forgery_still_breaks_the_link_to_the_next_event():
    events = chain(3)
    events[1] = replace(events[1], data={"forged": True}).with_hash()
    assert verify_chain(events) == ["file-1 v3: prev_hash does not link to the event before"]


@given(json_values)
def test_json_round_trip_keeps_the_hash(data):
    envelope = chain(1, data={"value": data})[0]
    again = from_json(to_json(envelope))
    assert again == envelope and again.hash_is_valid()


def test_canonical_json_is_sorted_compact_utf8():
    assert canonical_json({"b": 1, "a": "ജ"}) == '{"a":"ജ","b":1}'.encode()


def test_a_bad_envelope_names_every_problem():
    with pytest.raises(ValidationError) as raised:
        from_json({"stream_version": 0, "event_type": ""})
    assert {"event_id", "stream_version", "event_type", "hash", "metadata"} <= set(
        raised.value.messages
    )


@given(json_values, st.dictionaries(st.text(max_size=8), json_values, max_size=3))
def test_the_fast_serialiser_is_exactly_the_schemas_dump(data, extra_metadata):
    envelope = replace(
        chain(1, data={"value": data})[0],
        metadata={"actor_id": "a", "actor_roles": [], "correlation_id": "c", **extra_metadata},
    )
    assert to_json(envelope) == EnvelopeSchema().dump(envelope)


@given(json_values, st.dictionaries(st.text(max_size=8), json_values, max_size=3), st.text())
def test_the_envelope_hash_is_the_chain_hash_of_the_whole_document(data, extra, stream):
    envelope = replace(
        chain(1, data={"value": data})[0],
        stream_id=stream,
        metadata={"actor_id": "a", "actor_roles": [], "correlation_id": "c", **extra},
    )
    document = to_json(envelope)
    del document["hash"], document["signature"]  # the signature seals the hash
    assert compute_hash(envelope) == chain_hash(envelope.prev_hash, document)


@given(st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.timezones()))
def test_timestamps_are_written_one_way(moment):
    expected = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert format_timestamp(moment) == expected


# -- known answers ---------------------------------------------------------------
# Written out by hand, not produced by the code under test: the canonical text
# an auditor's own tool would build for each envelope (keys sorted, no white
# space, UTF-8 not \u-escaped, microsecond UTC timestamps), and its SHA-256
# after the previous hash, by hashlib. A change to the canonical form, the
# field set, the timestamp format or the hashing fails here.

KNOWN_FIRST = Envelope(
    event_id=uuid.UUID("3f2c8a4e-1b7d-4c5e-9a0f-6d8e2b1c4a7f"),
    stream_id="file-6f1c2f0e-5a8b-4f57-9a55-3f1d2b8c9e01",
    stream_version=1,
    global_position=41,
    event_type="ApplicationSubmitted",
    schema_version=1,
    data={"form": {"child_name": "ആദിത്യ", "weight_grams": 3150}, "local_body": "KL-EKM-KOC"},
    metadata={"actor_id": "citizen-1", "actor_roles": ["citizen"], "correlation_id": "r-1"},
    recorded_at=datetime(2026, 11, 29, 9, 30, 0, 5, tzinfo=UTC),
    prev_hash=GENESIS_HASH,
    hash="",
)
KNOWN_FIRST_TEXT = (
    '{"data":{"form":{"child_name":"ആദിത്യ","weight_grams":3150},"local_body":"KL-EKM-KOC"},'
    '"event_id":"3f2c8a4e-1b7d-4c5e-9a0f-6d8e2b1c4a7f","event_type":"ApplicationSubmitted",'
    '"global_position":41,"metadata":{"actor_id":"citizen-1","actor_roles":["citizen"],'
    '"correlation_id":"r-1"},"prev_hash":"' + "0" * 64 + '",'
    '"recorded_at":"2026-11-29T09:30:00.000005Z","schema_version":1,'
    '"stream_id":"file-6f1c2f0e-5a8b-4f57-9a55-3f1d2b8c9e01","stream_version":1}'
)
KNOWN_FIRST_HASH = "fb7d1887d90f22f3ecfb7eff9c870e25a10e022fa7fa47db1d238a8b9fc61b99"


def _known_second(prev_hash: str) -> tuple[Envelope, str]:
    envelope = Envelope(
        event_id=uuid.UUID("9b0e7c1d-2a3f-4e5d-8c6b-7a1f0e2d3c4b"),
        stream_id=KNOWN_FIRST.stream_id,
        stream_version=2,
        global_position=57,
        event_type="FileVerified",
        schema_version=1,
        data={},
        metadata={"actor_id": "clerk-1", "actor_roles": ["clerk"], "correlation_id": "r-2"},
        recorded_at=datetime(2026, 11, 30, 4, 0, 0, 0, tzinfo=UTC),
        prev_hash=prev_hash,
        hash="",
    )
    text = (
        '{"data":{},"event_id":"9b0e7c1d-2a3f-4e5d-8c6b-7a1f0e2d3c4b",'
        '"event_type":"FileVerified","global_position":57,"metadata":{"actor_id":"clerk-1",'
        '"actor_roles":["clerk"],"correlation_id":"r-2"},"prev_hash":"' + prev_hash + '",'
        '"recorded_at":"2026-11-30T04:00:00.000000Z","schema_version":1,'
        '"stream_id":"file-6f1c2f0e-5a8b-4f57-9a55-3f1d2b8c9e01","stream_version":2}'
    )
    return envelope, text


def _sha256_after(prev_hash: str, text: str) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + text.encode("utf-8")).hexdigest()


def test_known_answer_the_first_event_of_a_file():
    expected = _sha256_after(GENESIS_HASH, KNOWN_FIRST_TEXT)
    assert expected == KNOWN_FIRST_HASH
    assert compute_hash(KNOWN_FIRST) == expected
    document = {
        key: value
        for key, value in to_json(KNOWN_FIRST).items()
        if key not in ("hash", "signature")
    }
    assert canonical_json(document) == KNOWN_FIRST_TEXT.encode("utf-8")


def test_known_answer_a_chained_event():
    second, text = _known_second(KNOWN_FIRST_HASH)
    expected = _sha256_after(KNOWN_FIRST_HASH, text)
    assert expected == "89fc0ce789117e60b4d1196b7d9399c5804ad30c3ca779e5dfba8a0c36d934df"
    assert compute_hash(second) == expected
    chain = [replace(KNOWN_FIRST, hash=KNOWN_FIRST_HASH), replace(second, hash=expected)]
    assert verify_chain(chain) == []
