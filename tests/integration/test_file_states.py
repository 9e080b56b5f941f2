"""The notifications service's own projection of each file, on a real
database as the service's least-privileged role: the file right after any
event, however events arrive, with the event store read only for what was
not seen."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from ksmart_catalogue.catalogue import Catalogue
from ksmart_common.domain.file import Actor, replay, take_action
from ksmart_notifications import file_states
from tests.support.databases import fresh_service_database
from tests.support.files import submission
from tests.support.waiting import wait_for
from tests.unit.test_file_domain import Stream

KOCHI = "KL-EKM-KOC"
CITIZEN = Actor(str(uuid.uuid4()), ("citizen",))
CLERK = Actor("clerk-1", ("clerk",), KOCHI)
SECRETARY = Actor("secretary-1", ("secretary",), KOCHI)
NOW = datetime(2026, 11, 30, 6, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine():
    with fresh_service_database("notifications") as database:
        engine = sa.create_engine(database.service_url, pool_size=3)
        yield engine
        engine.dispose()


class EventStore:
    """The applications service's read_stream over one stream, counting calls."""

    def __init__(self, stream: Stream):
        self.stream = stream
        self.reads: list[tuple[int, int]] = []

    def __call__(self, stream_id: str, from_version: int, to_version: int):
        assert stream_id == self.stream.stream_id
        self.reads.append((from_version, to_version))
        return self.stream.envelopes[from_version - 1 : to_version]


def _decided_file() -> Stream:
    """A file submitted, returned for clarification, answered, verified:
    four events."""
    stream = Stream(str(uuid.uuid4()))
    definition = Catalogue.load().get_service("birth-certificate")
    state = stream.add(submission(stream.stream_id[5:], definition, KOCHI, CITIZEN), CITIZEN)
    state = stream.add(take_action(state, "return_for_clarification", CLERK, "Attach"), CLERK)
    state = stream.add(take_action(state, "resubmit", CITIZEN, "Attached"), CITIZEN)
    stream.add(take_action(state, "verify", CLERK), CLERK)
    return stream


def _after(engine, stream: Stream, version: int, store: EventStore):
    with engine.begin() as conn:
        return file_states.state_after(conn, stream.envelopes[version - 1], store, NOW)


def _stored_version(engine, stream: Stream) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT version FROM file_states WHERE stream_id = :id"),
            {"id": stream.stream_id},
        ).scalar()


def _expected(stream: Stream, version: int):
    return replay(stream.envelopes[:version])


def test_events_in_order_are_projected_without_reading_the_event_store(engine):
    stream = _decided_file()
    store = EventStore(stream)
    for version in range(1, 5):
        assert _after(engine, stream, version, store) == _expected(stream, version)
    assert store.reads == []
    assert _stored_version(engine, stream) == 4


def test_a_duplicate_of_the_last_event_gives_the_same_file_again(engine):
    stream = _decided_file()
    store = EventStore(stream)
    _after(engine, stream, 1, store)
    _after(engine, stream, 2, store)
    assert _after(engine, stream, 2, store) == _expected(stream, 2)
    assert store.reads == []
    assert _stored_version(engine, stream) == 2


def test_a_gap_reads_only_the_events_not_seen(engine):
    stream = _decided_file()
    store = EventStore(stream)
    _after(engine, stream, 1, store)
    assert _after(engine, stream, 4, store) == _expected(stream, 4)
    assert store.reads == [(2, 3)]
    assert _stored_version(engine, stream) == 4


def test_a_file_first_seen_mid_stream_is_read_from_its_start(engine):
    stream = _decided_file()
    store = EventStore(stream)
    assert _after(engine, stream, 3, store) == _expected(stream, 3)
    assert store.reads == [(1, 2)]


def test_an_event_redelivered_after_later_ones_is_told_from_the_file_as_it_stood_then(engine):
    stream = _decided_file()
    store = EventStore(stream)
    for version in range(1, 5):
        _after(engine, stream, version, store)
    assert _after(engine, stream, 2, store) == _expected(stream, 2)
    assert store.reads == [(1, 2)]
    # The stored file stays the latest.
    assert _stored_version(engine, stream) == 4


def test_two_events_of_one_file_take_turns(engine):
    stream = _decided_file()
    store = EventStore(stream)
    _after(engine, stream, 1, store)
    # The second event's transaction holds the file while the third arrives.
    with engine.begin() as holding:
        file_states.state_after(holding, stream.envelopes[1], store, NOW)
        third = threading.Thread(target=_after, args=(engine, stream, 3, store))
        third.start()
        wait_for(lambda: _waiting_for_a_lock(engine), message="the third event to wait")
    third.join(timeout=10)
    assert not third.is_alive()
    # It found the second event projected: nothing was read, nothing lost.
    assert store.reads == []
    assert _stored_version(engine, stream) == 3


def _waiting_for_a_lock(engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND NOT granted"
                    " AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                )
            ).scalar()
        )
