"""One replay measurement in a process of its own, so that its peak memory
is its own: `python -m bench.replay_measure MODE APPLICATIONS_URL
[WORKFLOW_URL TABLE]` prints one JSON line {events, seconds, peak_rss_mib}.

MODE is one of
- raw: psycopg2's server-side cursor fetching every event row in stream
  order, the database driver's own limit (the reference);
- verify: EventStore.iter_by_stream(stored=True) and verify_chain on every
  stream (each hash taken over the row's stored text, which must be
  canonical), and the Merkle root of the whole log (the auditor's check of
  the whole log: its hash chains and the tree a checkpoint signs);
- rebuild: ksmart_workflow.rebuild.rebuild_files into a fresh table.
"""

from __future__ import annotations

import json
import sys
import time

FETCH_ROWS = 2_000
RAW_QUERY = (
    "SELECT global_position, event_id, stream_id, stream_version, event_type, schema_version,"
    " data, metadata, recorded_at, prev_hash, hash FROM events"
    " ORDER BY stream_id, stream_version"
)


def raw(dsn: str) -> int:
    import psycopg2

    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor(name="replay_raw") as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute(RAW_QUERY)
            count = 0
            while rows := cursor.fetchmany(FETCH_ROWS):
                count += len(rows)
        return count
    finally:
        connection.close()


def merkle_root(dsn: str) -> tuple[int, bytes]:
    """The transparency log's tree over every event in global-position
    order (leaf = leaf_hash of the stored hash's 32 bytes): the size and
    root a checkpoint signs. Its own cursor: the chains read in stream
    order, the tree needs position order."""
    import hashlib

    import psycopg2

    from ksmart_common.merkle import LEAF_PREFIX, CompactRange

    sha256 = hashlib.sha256
    edge = CompactRange()
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor(name="replay_merkle") as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute("SELECT hash FROM events ORDER BY global_position")
            while rows := cursor.fetchmany(FETCH_ROWS):
                edge.extend([sha256(LEAF_PREFIX + bytes.fromhex(row[0])).digest() for row in rows])
    finally:
        connection.close()
    return edge.size, edge.root()


def verify(url: str) -> int:
    import sqlalchemy as sa

    from ksmart_common.envelope import verify_chain
    from ksmart_common.eventstore import EventStore

    engine = sa.create_engine(url)
    store = EventStore(engine)
    count = 0
    for stream in store.iter_by_stream(batch_size=FETCH_ROWS, stored=True):
        problems = verify_chain(stream)
        if problems:
            raise SystemExit(f"the generated log does not verify: {problems[:3]}")
        count += len(stream)
    engine.dispose()
    size, _ = merkle_root(dsn_of(url))
    if size != count:
        raise SystemExit(f"the tree has {size} leaves, the chains {count} events")
    return count


def dsn_of(url: str) -> str:
    """A SQLAlchemy URL as a libpq one, for psycopg2.connect."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def rebuild(url: str, workflow_url: str, table_name: str) -> int:
    import sqlalchemy as sa

    from ksmart_common.eventstore import EventStore
    from ksmart_workflow.rebuild import rebuild_files

    engine, workflow = sa.create_engine(url), sa.create_engine(workflow_url)
    result = rebuild_files(EventStore(engine), workflow, table_name)
    engine.dispose()
    workflow.dispose()
    return result.events


def peak_rss_mib() -> float:
    """This process's own peak resident memory. Not getrusage's ru_maxrss:
    Linux carries that across fork and exec, so it would report the parent's
    peak (the benchmark runner's) whenever that is larger."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: list[str]) -> None:
    mode, url, *rest = argv
    started = time.perf_counter()
    if mode == "raw":
        events = raw(url)
    elif mode == "verify":
        events = verify(url)
    elif mode == "rebuild":
        events = rebuild(url, *rest)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    seconds = time.perf_counter() - started
    print(json.dumps({"events": events, "seconds": seconds, "peak_rss_mib": peak_rss_mib()}))


if __name__ == "__main__":
    main(sys.argv[1:])
