"""The envelope's one serialisation path and the hash chain an auditor checks."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from ksmart_common.canonical import canonical_json, chain_hash
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
    del document["hash"]
    assert compute_hash(envelope) == chain_hash(envelope.prev_hash, document)


@given(st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.timezones()))
def test_timestamps_are_written_one_way(moment):
    expected = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert format_timestamp(moment) == expected
