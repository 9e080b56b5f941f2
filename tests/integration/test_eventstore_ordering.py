"""The late-commit argument, proven under concurrency: while many writers
append at once, a follower reading "everything after my checkpoint" never
skips an event, and positions come out gap-free and unique.

On two cores, processes started together may still run one after another.
So the writers are made to interleave: each round they all read a shared
stream's version, meet at a barrier, and append with it at once (exactly
one may win the round; every other append is a conflict); and half-way they
wait until the follower has read something, so the follower is shown to
read while writers are still running. The test asserts both happened."""

import multiprocessing
import uuid

import sqlalchemy as sa

from ksmart_common.envelope import NewEvent, file_stream_id, verify_chain
from ksmart_common.errors import VersionConflict
from ksmart_common.eventstore import EventStore

WRITERS = 6
ROUNDS = 20
SHARED_STREAMS = [file_stream_id(uuid.uuid4()) for _ in range(3)]
METADATA = {"actor_id": "w", "actor_roles": ["clerk"], "correlation_id": "c"}
DEADLINE_SECONDS = 60


def _writer(url, writer, shared_streams, barrier, follower_has_read, results) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    store = EventStore(engine)
    appended = won = conflicts = 0
    for index in range(ROUNDS):
        if index == ROUNDS // 2 and not follower_has_read.wait(DEADLINE_SECONDS):
            raise AssertionError("the follower read nothing while the writers waited")
        # A stream of the writer's own: one or two events, never contended.
        events = [
            NewEvent("ApplicationSubmitted", {"writer": writer, "i": index})
            for _ in range(1 + index % 2)
        ]
        store.append(file_stream_id(uuid.uuid4()), events, 0, METADATA)
        appended += len(events)
        # The round's contest: every writer appends with the same version.
        stream = shared_streams[index % len(shared_streams)]
        version = store.stream_version(stream)
        barrier.wait(DEADLINE_SECONDS)
        contender = NewEvent("FileVerified", {"writer": writer, "i": index})
        try:
            store.append(stream, [contender], version, METADATA)
            appended += 1
            won += 1
        except VersionConflict:
            conflicts += 1
    store.close()
    engine.dispose()
    results.put((appended, won, conflicts))


def test_a_follower_never_skips_an_event_that_commits_late(applications_db):
    url = applications_db.service_url
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    barrier = context.Barrier(WRITERS)
    follower_has_read = context.Event()
    writers = [
        context.Process(
            target=_writer,
            args=(url, writer, SHARED_STREAMS, barrier, follower_has_read, results),
        )
        for writer in range(WRITERS)
    ]
    engine = sa.create_engine(url)
    store = EventStore(engine)
    seen: list[int] = []
    seen_mid_way = 0  # what the follower had read when it let the writers go on
    checkpoint = 0
    for writer in writers:
        writer.start()
    # Follow the log the way the relay does, for as long as anyone writes.
    while any(writer.is_alive() for writer in writers) or store.last_position() > checkpoint:
        for envelope in store.read_all(checkpoint, limit=50):
            assert envelope.global_position == checkpoint + 1, "a reader saw a gap"
            seen.append(envelope.global_position)
            checkpoint = envelope.global_position
        if seen and not follower_has_read.is_set():
            seen_mid_way = len(seen)
            follower_has_read.set()
    for writer in writers:
        writer.join(DEADLINE_SECONDS)
        assert writer.exitcode == 0
    totals = [results.get(timeout=10) for _ in writers]
    appended = sum(count for count, _, _ in totals)
    won = sum(wins for _, wins, _ in totals)
    conflicts = sum(lost for _, _, lost in totals)

    stored = [envelope.global_position for envelope in store.iter_all(0)]
    assert stored == list(range(1, appended + 1))  # gap-free, unique
    assert seen == stored  # the follower saw every event, none skipped
    # The follower read while writers were still appending, not only after:
    # half of every writer's rounds came after what it had read then.
    assert 0 < seen_mid_way <= len(stored) // 2
    # Every round had exactly one winner: the others conflicted, none of them
    # silently overwrote or forked the stream.
    assert won == ROUNDS and conflicts == ROUNDS * (WRITERS - 1)
    contested = [store.read_stream(stream) for stream in SHARED_STREAMS]
    assert sum(len(events) for events in contested) == ROUNDS
    for events in contested:  # contended streams still chain correctly
        assert verify_chain(events) == []
    # The writers' appends interleave in the log: consecutive events change
    # writer far more often than one writer after another would.
    order = [envelope.data["writer"] for envelope in store.iter_all(0)]
    switches = sum(1 for before, after in zip(order, order[1:], strict=False) if before != after)
    assert switches >= ROUNDS, switches
    store.close()
    engine.dispose()
