"""File numbers: gapless and unique per series, given in the appending
transaction, even with concurrent appends through two stores (two replicas
of the applications service) on one database."""

import threading
import uuid
from collections import defaultdict

import psycopg2.errors
import pytest
import sqlalchemy as sa

from ksmart_common.envelope import NewEvent, verify_chain
from ksmart_common.errors import VersionConflict
from ksmart_common.eventstore import EventStore, NumberRequest

METADATA = {"actor_id": "u", "actor_roles": ["citizen"], "correlation_id": "c"}
KEY = "file_number"


@pytest.fixture
def two_stores(applications_db):
    engines = [sa.create_engine(applications_db.service_url, pool_size=8) for _ in range(2)]
    stores = [EventStore(engine) for engine in engines]
    yield stores
    for store, engine in zip(stores, engines, strict=True):
        store.close()
        engine.dispose()


def _new_file(store, series):
    stream = f"file-{uuid.uuid4()}"
    [envelope] = store.append(
        stream,
        [NewEvent("ApplicationSubmitted", {"form": {}})],
        0,
        METADATA,
        NumberRequest(series, KEY),
    )
    return envelope


def _numbers_table(store):
    with store.engine.connect() as conn:
        return conn.execute(sa.text("SELECT series, number, stream_id FROM stream_numbers")).all()


def test_concurrent_submissions_through_two_replicas_get_gapless_distinct_numbers(two_stores):
    series = ["KL-EKM-KOC/BR/2026", "KL-EKM-KOC/TL/2026", "KL-TVM-TVC/BR/2026"]
    envelopes, errors = [], []
    lock = threading.Lock()

    def submit_many(worker):
        store = two_stores[worker % 2]
        for index in range(30):
            try:
                envelope = _new_file(store, series[(worker + index) % len(series)])
            except Exception as error:  # noqa: BLE001 - recorded for the assertion
                errors.append(error)
                continue
            with lock:
                envelopes.append(envelope)

    threads = [threading.Thread(target=submit_many, args=(worker,)) for worker in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == []
    assert len(envelopes) == 360
    by_series = defaultdict(list)
    for envelope in envelopes:
        prefix, _, number = envelope.data[KEY].rpartition("/")
        assert len(number) == 6
        by_series[prefix].append(int(number))
        assert verify_chain([envelope]) == []  # the number is inside the hash
    for prefix, numbers in by_series.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), prefix
    table = {(row.series, row.number): row.stream_id for row in _numbers_table(two_stores[0])}
    assert table == {
        (envelope.data[KEY].rpartition("/")[0], int(envelope.data[KEY].rpartition("/")[2])): (
            envelope.stream_id
        )
        for envelope in envelopes
    }


def test_the_number_is_part_of_the_hashed_event(store):
    envelope = _new_file(store, "KL-EKM-KOC/BR/2026")
    [stored] = store.read_stream(envelope.stream_id)
    assert stored.data[KEY] == "KL-EKM-KOC/BR/2026/000001"
    assert stored.hash == envelope.hash
    assert stored.with_hash().hash == stored.hash


def test_a_refused_append_uses_no_number(store):
    first = _new_file(store, "KL-EKM-KOC/BR/2026")
    with pytest.raises(VersionConflict):
        store.append(
            first.stream_id,
            [NewEvent("ApplicationSubmitted", {})],
            0,
            METADATA,
            NumberRequest("KL-EKM-KOC/BR/2026", KEY),
        )
    duplicate_id = first.event_id
    # The same event id twice: the events table's unique key refuses it.
    with pytest.raises(psycopg2.errors.UniqueViolation):
        store.append(
            f"file-{uuid.uuid4()}",
            [NewEvent("ApplicationSubmitted", {}, event_id=duplicate_id)],
            0,
            METADATA,
            NumberRequest("KL-EKM-KOC/BR/2026", KEY),
        )
    assert _new_file(store, "KL-EKM-KOC/BR/2026").data[KEY].endswith("/000002")


def test_a_replica_with_a_stale_memory_of_a_series_does_not_repeat_a_number(two_stores):
    first, second = two_stores
    assert _new_file(first, "S/1").data[KEY] == "S/1/000001"
    assert _new_file(second, "S/1").data[KEY] == "S/1/000002"
    # `first` remembers 1 as the last number: its guess collides, it reads again.
    assert _new_file(first, "S/1").data[KEY] == "S/1/000003"
    assert sorted(row.number for row in _numbers_table(first)) == [1, 2, 3]


def test_only_a_new_stream_is_numbered(store):
    envelope = _new_file(store, "S/2")
    with pytest.raises(ValueError):
        store.append(
            envelope.stream_id, [NewEvent("X", {})], 1, METADATA, NumberRequest("S/2", KEY)
        )


def test_numbers_cannot_be_changed_even_by_the_owner(applications_db, store):
    _new_file(store, "S/3")
    engine = sa.create_engine(applications_db.superuser_url)
    with pytest.raises(sa.exc.DBAPIError, match="immutable"), engine.begin() as conn:
        conn.execute(sa.text("UPDATE stream_numbers SET number = 9"))
    engine.dispose()
