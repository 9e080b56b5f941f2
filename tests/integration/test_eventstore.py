"""The event store on a real PostgreSQL: appends, conflicts, reads, immutability."""

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from ksmart_common.canonical import GENESIS_HASH
from ksmart_common.envelope import NewEvent, file_stream_id, from_json, to_json, verify_chain
from ksmart_common.errors import VersionConflict

METADATA = {"actor_id": "u-1", "actor_roles": ["citizen"], "correlation_id": "c-1"}


def _events(*types):
    return [
        NewEvent(event_type, {"n": index, "text": "ജനനം"}) for index, event_type in enumerate(types)
    ]


def test_append_assigns_versions_positions_and_a_hash_chain(store):
    first, second = file_stream_id(uuid.uuid4()), file_stream_id(uuid.uuid4())
    a = store.append(first, _events("ApplicationSubmitted", "FileVerified"), 0, METADATA)
    b = store.append(second, _events("ApplicationSubmitted"), 0, METADATA)
    c = store.append(first, _events("FileApproved"), 2, METADATA)

    assert [e.stream_version for e in a + c] == [1, 2, 3]
    assert [e.global_position for e in a + b + c] == [1, 2, 3, 4]
    assert a[0].prev_hash == GENESIS_HASH and a[1].prev_hash == a[0].hash
    assert c[0].prev_hash == a[1].hash
    stored = store.read_stream(first)
    assert stored == a + c
    assert verify_chain(stored) == []


def test_stale_expected_version_is_a_conflict_and_stores_nothing(store):
    stream = file_stream_id(uuid.uuid4())
    store.append(stream, _events("ApplicationSubmitted"), 0, METADATA)
    with pytest.raises(VersionConflict) as raised:
        store.append(stream, _events("FileVerified"), 0, METADATA)
    assert "version 1" in raised.value.detail
    assert store.stream_version(stream) == 1
    assert store.last_position() == 1


def test_read_stream_up_to_a_version_or_a_moment(store):
    stream = file_stream_id(uuid.uuid4())
    first = store.append(stream, _events("ApplicationSubmitted"), 0, METADATA)
    store.append(stream, _events("FileVerified"), 1, METADATA)
    assert [e.stream_version for e in store.read_stream(stream, to_version=1)] == [1]
    as_of = store.read_stream(stream, until=first[0].recorded_at)
    assert as_of == first
    assert store.read_stream(stream, until=first[0].recorded_at - timedelta(seconds=1)) == []


def test_read_all_pages_and_iterates_in_position_order(store):
    for _ in range(7):
        store.append(file_stream_id(uuid.uuid4()), _events("ApplicationSubmitted"), 0, METADATA)
    page = store.read_all(after_position=2, limit=3)
    assert [e.global_position for e in page] == [3, 4, 5]
    assert [e.global_position for e in store.iter_all(4, batch_size=2)] == [5, 6, 7]


def test_the_service_role_cannot_change_or_remove_events(store, applications_db):
    store.append(file_stream_id(uuid.uuid4()), _events("ApplicationSubmitted"), 0, METADATA)
    with store.engine.connect() as conn:
        for statement in (
            "UPDATE events SET event_type = 'X'",
            "DELETE FROM events",
            "TRUNCATE events",
        ):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                conn.execute(sa.text(statement))
            conn.rollback()


def test_even_the_owner_is_refused_by_the_trigger(store, applications_db):
    store.append(file_stream_id(uuid.uuid4()), _events("ApplicationSubmitted"), 0, METADATA)
    owner = sa.create_engine(applications_db.superuser_url)
    with owner.connect() as conn:
        for statement in (
            "UPDATE events SET event_type = 'X'",
            "DELETE FROM events",
            "TRUNCATE events",
        ):
            with pytest.raises(sa.exc.DBAPIError, match="events are immutable"):
                conn.execute(sa.text(statement))
            conn.rollback()
    owner.dispose()
    assert store.last_position() == 1


def test_data_that_is_not_json_is_refused_before_anything_is_stored(store):
    with pytest.raises(ValueError, match="not storable JSON"):
        store.append(
            file_stream_id(uuid.uuid4()), [NewEvent("X", {"n": float("nan")})], 0, METADATA
        )
    assert store.last_position() == 0


def test_every_metadata_key_is_hashed_and_survives_export(store):
    stream = file_stream_id(uuid.uuid4())
    metadata = {**METADATA, "request_fingerprint": "abc", "local_body": "KL-EKM-KOC"}
    store.append(stream, _events("ApplicationSubmitted", "FileVerified"), 0, metadata)
    exported = [from_json(to_json(envelope)) for envelope in store.read_stream(stream)]
    assert exported[0].metadata["request_fingerprint"] == "abc"
    assert verify_chain(exported) == []
    forged = [
        exported[0].__class__(
            **{**exported[0].__dict__, "metadata": {**metadata, "request_fingerprint": "x"}}
        )
    ]
    assert verify_chain(forged) != []


def test_metadata_without_an_actor_is_refused(store):
    with pytest.raises(ValueError, match="actor_id"):
        store.append(file_stream_id(uuid.uuid4()), _events("X"), 0, {"correlation_id": "c"})
    assert store.last_position() == 0


def test_iter_by_stream_groups_interleaved_streams_in_version_order(store):
    streams = [file_stream_id(uuid.uuid4()) for _ in range(4)]
    for round_number in range(3):  # interleaved: every stream grows in each round
        for stream in streams:
            store.append(stream, _events(f"Event{round_number}"), round_number, METADATA)
    cut = store.last_position()
    store.append(streams[0], _events("AfterTheCut"), 3, METADATA)
    store.append(file_stream_id(uuid.uuid4()), _events("AfterTheCut"), 0, METADATA)

    grouped = list(store.iter_by_stream(batch_size=5))  # groups span fetches
    assert [group[0].stream_id for group in grouped] == sorted(
        {group[0].stream_id for group in grouped}
    )
    assert len(grouped) == 5
    for group in grouped:
        assert len({envelope.stream_id for envelope in group}) == 1
        assert group == store.read_stream(group[0].stream_id)
        assert verify_chain(group) == []

    before_cut = list(store.iter_by_stream(up_to_position=cut, batch_size=2))
    assert sorted(group[0].stream_id for group in before_cut) == sorted(streams)
    assert all([e.stream_version for e in group] == [1, 2, 3] for group in before_cut)
    assert max(e.global_position for group in before_cut for e in group) == cut
    assert list(store.iter_by_stream(up_to_position=0)) == []


@pytest.mark.parametrize(
    "text", ["Disability of 60% (certified)", "%s %s %s", "50%% paid", "%(x)s"]
)
def test_a_percent_sign_in_the_data_is_stored_as_written(store, text):
    """Rows are quoted into the statement: a "%" must never reach the driver
    as a placeholder (it once failed the append, or was halved silently and
    broke the hash chain)."""
    stream = file_stream_id(uuid.uuid4())
    written = store.append(
        stream,
        [NewEvent("ApplicationSubmitted", {"remarks": text})],
        0,
        {**METADATA, "correlation_id": text},
    )
    stored = store.read_stream(stream)
    assert stored == written
    assert stored[0].data["remarks"] == text and stored[0].metadata["correlation_id"] == text
    assert verify_chain(stored) == []


def test_a_row_rewritten_among_many_is_found_not_canonical_by_every_reader(store, applications_db):
    """The reader checks a fetch's texts together (canonical_values); one
    rewritten text among them is still named, and only its event."""
    streams = [file_stream_id(uuid.uuid4()) for _ in range(3)]
    for stream in streams:
        store.append(stream, _events("A", "B", "C"), 0, METADATA)
    owner = sa.create_engine(applications_db.superuser_url)
    with owner.begin() as conn:
        conn.execute(sa.text("ALTER TABLE events DISABLE TRIGGER USER"))
        # The same values, spelled with a space: json keeps it as written.
        conn.execute(
            sa.text(
                "UPDATE events SET data = replace(data::text, '\"n\":', '\"n\": ')::json"
                " WHERE global_position = 5"
            )
        )
        conn.execute(sa.text("ALTER TABLE events ENABLE TRIGGER USER"))
    owner.dispose()

    def not_canonical(events):
        return {
            event.envelope.global_position: event.not_canonical()
            for event in events
            if event.not_canonical() is not None
        }

    by_stream = [event for stream in store.iter_by_stream(stored=True) for event in stream]
    for events in (
        by_stream,
        list(store.iter_all(stored=True, batch_size=4)),
        store.read_all(stored=True),
        store.read_stream(streams[1], stored=True),
    ):
        (position, reason), *others = not_canonical(events).items()
        assert position == 5 and others == [] and "character" in reason
    assert [problem for problem in verify_chain(store.read_stream(streams[1], stored=True))] == [
        f"{streams[1]} v2: hash does not match the event's content (altered)",
        f"{streams[1]} v2: the stored text is not canonical JSON ({reason})",
    ]
