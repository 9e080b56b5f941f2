"""The late-commit argument, proven under concurrency: while many writers
append at once, a follower reading "everything after my checkpoint" never
skips an event, and positions come out gap-free and unique."""

import multiprocessing
import uuid

import sqlalchemy as sa

from ksmart_common.envelope import NewEvent, file_stream_id, verify_chain
from ksmart_common.errors import VersionConflict
from ksmart_common.eventstore import EventStore

WRITERS = 6
APPENDS_PER_WRITER = 60
SHARED_STREAMS = [file_stream_id(uuid.uuid4()) for _ in range(3)]
METADATA = {"actor_id": "w", "actor_roles": ["clerk"], "correlation_id": "c"}


def _writer(url: str, shared_streams: list[str], count: int, results) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    store = EventStore(engine)
    appended = conflicts = 0
    for index in range(count):
        if index % 3 == 0:
            # Contend on a shared stream with the version we just read.
            stream = shared_streams[index % len(shared_streams)]
            try:
                store.append(
                    stream,
                    [NewEvent("FileVerified", {"i": index})],
                    store.stream_version(stream),
                    METADATA,
                )
                appended += 1
            except VersionConflict:
                conflicts += 1
        else:
            events = [NewEvent("ApplicationSubmitted", {"i": index}) for _ in range(1 + index % 2)]
            store.append(file_stream_id(uuid.uuid4()), events, 0, METADATA)
            appended += len(events)
    engine.dispose()
    results.put((appended, conflicts))


def test_a_follower_never_skips_an_event_that_commits_late(applications_db):
    url = applications_db.service_url
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    writers = [
        context.Process(target=_writer, args=(url, SHARED_STREAMS, APPENDS_PER_WRITER, results))
        for _ in range(WRITERS)
    ]
    engine = sa.create_engine(url)
    store = EventStore(engine)
    seen: list[int] = []
    checkpoint = 0
    for writer in writers:
        writer.start()
    # Follow the log the way the relay does, for as long as anyone writes.
    while any(writer.is_alive() for writer in writers) or store.last_position() > checkpoint:
        for envelope in store.read_all(checkpoint, limit=50):
            assert envelope.global_position == checkpoint + 1, "a reader saw a gap"
            seen.append(envelope.global_position)
            checkpoint = envelope.global_position
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    totals = [results.get(timeout=10) for _ in writers]
    appended = sum(count for count, _ in totals)

    stored = [envelope.global_position for envelope in store.iter_all(0)]
    assert stored == list(range(1, appended + 1))  # gap-free, unique
    assert seen == stored  # the follower saw every event, none skipped
    for stream in SHARED_STREAMS:  # contended streams still chain correctly
        assert verify_chain(store.read_stream(stream)) == []
    engine.dispose()
