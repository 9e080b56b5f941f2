"""Group commit: appends waiting together share one transaction, yet each is
judged alone: a stale version or a duplicate event id fails only its own
append."""

import threading
import uuid

import psycopg2
import pytest
import sqlalchemy as sa

from ksmart_common.appender import APPEND_LOCK
from ksmart_common.envelope import NewEvent, file_stream_id, verify_chain
from ksmart_common.errors import VersionConflict
from ksmart_common.eventstore import EventStore
from tests.support.waiting import wait_for

METADATA = {"actor_id": "u", "actor_roles": ["clerk"], "correlation_id": "c"}


def _appends_queued_behind_the_lock(store, applications_db, appends):
    """Hold the ordering lock, queue every append, then let them through, so
    the committer takes most of them as one batch."""
    holder = sa.create_engine(applications_db.service_url, poolclass=sa.pool.NullPool)
    outcomes: dict[int, object] = {}

    def run(index, stream, events, expected):
        try:
            outcomes[index] = store.append(stream, events, expected, METADATA)
        except Exception as error:  # noqa: BLE001 - recorded for the assertions
            outcomes[index] = error

    before = store._appender.submitted
    with holder.connect() as conn:
        conn.execute(sa.select(sa.func.pg_advisory_lock(APPEND_LOCK)))
        threads = [
            threading.Thread(target=run, args=(index, *append))
            for index, append in enumerate(appends)
        ]
        for thread in threads:
            thread.start()
        # Every append is with the committer before the lock is let go.
        wait_for(
            lambda: store._appender.submitted >= before + len(appends),
            message="appends handed to the committer",
        )
        conn.execute(sa.select(sa.func.pg_advisory_unlock(APPEND_LOCK)))
    for thread in threads:
        thread.join(20)
    holder.dispose()
    return outcomes


def test_a_stale_append_fails_alone_and_the_batch_commits(store, applications_db):
    shared = file_stream_id(uuid.uuid4())
    store.append(shared, [NewEvent("ApplicationSubmitted", {})], 0, METADATA)
    appends = [
        (file_stream_id(uuid.uuid4()), [NewEvent("ApplicationSubmitted", {})], 0) for _ in range(10)
    ]
    appends.append((shared, [NewEvent("FileVerified", {})], 1))  # current: commits
    appends.append((shared, [NewEvent("FileVerified", {})], 1))  # now stale: refused
    outcomes = _appends_queued_behind_the_lock(store, applications_db, appends)

    conflicts = [o for o in outcomes.values() if isinstance(o, VersionConflict)]
    assert len(conflicts) == 1
    assert sum(isinstance(o, list) for o in outcomes.values()) == 11
    # They were committed together, not one transaction each.
    assert store.largest_batch > 1
    assert store.last_position() == 12
    assert [e.global_position for e in store.iter_all(0)] == list(range(1, 13))
    assert verify_chain(store.read_stream(shared)) == []


def test_a_faulty_append_fails_alone_when_the_batch_insert_fails(store, applications_db):
    duplicate = NewEvent("ApplicationSubmitted", {})
    appends = [
        (file_stream_id(uuid.uuid4()), [NewEvent("ApplicationSubmitted", {})], 0) for _ in range(6)
    ]
    appends.append((file_stream_id(uuid.uuid4()), [duplicate], 0))
    appends.append((file_stream_id(uuid.uuid4()), [duplicate], 0))  # same event id again
    outcomes = _appends_queued_behind_the_lock(store, applications_db, appends)

    failures = [o for o in outcomes.values() if isinstance(o, Exception)]
    assert len(failures) == 1
    assert isinstance(failures[0], psycopg2.errors.UniqueViolation)
    assert store.last_position() == 7
    assert [e.global_position for e in store.iter_all(0)] == list(range(1, 8))
    # The store goes on working after the failure.
    store.append(file_stream_id(uuid.uuid4()), [NewEvent("ApplicationSubmitted", {})], 0, METADATA)
    assert store.last_position() == 8


def test_two_stores_on_one_log_never_trust_a_stale_guess(applications_db):
    """Two replicas of the applications service: each remembers what it
    wrote, and the other's appends make those memories stale."""
    engines = [sa.create_engine(applications_db.service_url) for _ in range(2)]
    first, second = (EventStore(engine) for engine in engines)
    try:
        shared = file_stream_id(uuid.uuid4())
        first.append(shared, [NewEvent("ApplicationSubmitted", {})], 0, METADATA)  # position 1
        second.append(
            file_stream_id(uuid.uuid4()), [NewEvent("ApplicationSubmitted", {})], 0, METADATA
        )  # position 2: the first store's guess is now stale
        appended = first.append(shared, [NewEvent("FileVerified", {})], 1, METADATA)
        assert appended[0].global_position == 3

        # The second store reads the stream, the first moves it on...
        assert second.read_stream(shared)[-1].stream_version == 2
        first.append(shared, [NewEvent("FileApproved", {})], 2, METADATA)
        # ...so the second's remembered head is stale: a conflict, not a fork.
        with pytest.raises(VersionConflict):
            second.append(shared, [NewEvent("FileRejected", {})], 2, METADATA)

        positions = [envelope.global_position for envelope in first.iter_all(0)]
        assert positions == [1, 2, 3, 4]
        assert verify_chain(first.read_stream(shared)) == []
        assert [e.event_type for e in first.read_stream(shared)] == [
            "ApplicationSubmitted",
            "FileVerified",
            "FileApproved",
        ]
    finally:
        for store, engine in zip((first, second), engines, strict=True):
            store.close()
            engine.dispose()
