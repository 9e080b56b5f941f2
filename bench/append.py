"""Append throughput: our event store against the database's own limit
(pgbench, a one-row insert of the same size) and the Python peer (the
`eventsourcing` library's PostgreSQL application recorder).

"Writers" are concurrent callers of one store in one process, as the
applications service's workers are (its one store batches them: group
commit); for pgbench they are client connections; for the peer, threads
sharing one recorder and a connection pool of that size.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.core import Progress, Ratio, Section, Settings
from ksmart_common import ed25519
from ksmart_common.envelope import NewEvent, file_stream_id
from ksmart_common.event_signatures import EventSigner
from ksmart_common.eventstore import EventStore
from tests.support.databases import fresh_service_database

# An application as it is really filed: a form, the pinned workflow omitted.
DATA = {
    "file_id": "5b8a3f2e-9d1c-4e57-a0c4-6b736d617274",
    "local_body": "KL-EKM-KOC",
    "applicant_id": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
    "form": {
        "child_name": "Anjali",
        "sex": "female",
        "date_of_birth": "2026-11-02",
        "place_of_birth": "hospital",
        "hospital_name": "General Hospital, Ernakulam",
        "mother_name": "Asha Menon",
        "parents_address": "12 MG Road, Kochi",
        "phone": "+971501234567",
    },
}
METADATA = {
    "actor_id": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
    "actor_roles": ["citizen"],
    "local_body": None,
    "correlation_id": "6f1d2c3b-4a59-4867-9786-a5b4c3d2e1f0",
    "causation_id": "6f1d2c3b-4a59-4867-9786-a5b4c3d2e1f0",
    "request_id": "6f1d2c3b-4a59-4867-9786-a5b4c3d2e1f0",
}


def run_writers(writers: int, seconds: float, work: Callable[[], int]) -> float:
    """Run `work` (returning events written) in `writers` threads; events/s."""
    counts = [0] * writers
    deadline = time.perf_counter() + seconds

    def loop(index: int) -> None:
        while time.perf_counter() < deadline:
            counts[index] += work()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def appending(store: EventStore, batch: int) -> Callable[[], int]:
    """One writer's work: a new file's stream of `batch` events."""

    def append() -> int:
        events = [NewEvent("ApplicationSubmitted", DATA) for _ in range(batch)]
        store.append(file_stream_id(uuid.uuid4()), events, 0, METADATA)
        return batch

    return append


def ours(url: str, writers: int, batch: int, seconds: float) -> float:
    engine = sa.create_engine(url, pool_size=writers + 2)
    # Each event signed, as the applications service signs it (one Ed25519
    # signature an event, on the committer's thread).
    signer = EventSigner.of(ed25519.generate_private_key())
    store = EventStore(engine, signing=lambda: signer)
    append = appending(store, batch)
    for _ in range(20):  # warm the pool and the prepared statement
        append()
    try:
        return run_writers(writers, seconds, append)
    finally:
        store.close()
        engine.dispose()


def stored_row_bytes(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        size = conn.execute(sa.text("SELECT avg(pg_column_size(e.*))::int FROM events e")).scalar()
    engine.dispose()
    return size


def pgbench(admin_url: str, database: str, clients: int, row_bytes: int, seconds: float) -> float:
    """One-row inserts of `row_bytes`, each its own transaction: the limit."""
    url = make_url(admin_url)
    engine = sa.create_engine(url.set(database=database), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS pgbench_rows"))
        conn.execute(
            sa.text("CREATE TABLE pgbench_rows (id bigserial PRIMARY KEY, payload json NOT NULL)")
        )
    engine.dispose()
    payload = '{"p": "' + "x" * max(row_bytes - 40, 10) + '"}'
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "insert.sql"
        script.write_text(f"INSERT INTO pgbench_rows (payload) VALUES ('{payload}');\n")
        result = subprocess.run(
            [
                "pgbench",
                "-n",
                "-h",
                url.host or "127.0.0.1",
                "-p",
                str(url.port or 5432),
                "-U",
                url.username or "postgres",
                "-c",
                str(clients),
                "-j",
                str(min(clients, 2)),
                "-T",
                str(max(int(seconds), 1)),
                "-f",
                str(script),
                database,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    return float(re.search(r"tps = ([\d.]+)", result.stdout).group(1))


def peer(admin_url: str, database: str, writers: int, batch: int, seconds: float) -> float:
    """The eventsourcing library's recorder, which also serialises inserts
    (LOCK TABLE ... IN EXCLUSIVE MODE) to keep notification ids in order."""
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    url = make_url(admin_url)
    datastore = PostgresDatastore(
        dbname=database,
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or "",
        pool_size=writers,
        max_overflow=0,
    )
    recorder = PostgresApplicationRecorder(datastore, events_table_name="peer_events")
    recorder.create_table()
    state = (str(DATA) + str(METADATA)).encode()

    def append() -> int:
        originator = uuid.uuid4()
        recorder.insert_events(
            [
                StoredEvent(
                    originator_id=originator,
                    originator_version=version,
                    topic="bench:ApplicationSubmitted",
                    state=state,
                )
                for version in range(1, batch + 1)
            ]
        )
        return batch

    try:
        for _ in range(20):
            append()
        return run_writers(writers, seconds, append)
    finally:
        datastore.close()


def run(settings: Settings, progress: Progress) -> Section:
    writer_counts = settings.pick([1, 4, 16], [1, 4])
    batches = settings.pick([1, 10, 100], [1, 10])
    seconds = settings.pick(4.0, 1.5)
    rows, series_ours, series_pgbench, series_peer = [], {}, [], {}
    with fresh_service_database("applications") as database:
        ours(database.service_url, 1, 1, 0.2)  # leave rows to measure their size
        row_bytes = stored_row_bytes(database.superuser_url)
        progress(f"append: a stored event row is {row_bytes} bytes")
        best = {"ours": {}, "peer": {}, "pgbench": 0.0}
        for writers in writer_counts:
            limit = pgbench(database.admin_url, database.name, writers, row_bytes, seconds)
            series_pgbench.append([writers, limit])
            best["pgbench"] = max(best["pgbench"], limit)
            progress(f"append: pgbench {writers} clients: {limit:,.0f} rows/s")
            for batch in batches:
                rate = ours(database.service_url, writers, batch, seconds)
                peer_rate = peer(database.admin_url, database.name, writers, batch, seconds)
                series_ours.setdefault(batch, []).append([writers, rate])
                series_peer.setdefault(batch, []).append([writers, peer_rate])
                best["ours"][batch] = max(best["ours"].get(batch, 0.0), rate)
                best["peer"][batch] = max(best["peer"].get(batch, 0.0), peer_rate)
                rows.append(
                    [
                        writers,
                        batch,
                        round(rate),
                        round(peer_rate),
                        round(limit),
                        round(rate / limit, 2),
                        round(rate / peer_rate, 2),
                    ]
                )
                progress(
                    f"append: {writers} writers x {batch}-event appends: ours "
                    f"{rate:,.0f} ev/s, peer {peer_rate:,.0f} ev/s"
                )
    ratios = []
    for batch in batches:
        ratios.append(
            Ratio(
                f"append, {batch}-event transactions, vs pgbench (best of each)",
                best["ours"][batch],
                best["pgbench"],
                0.5,
                "events/s",
            )
        )
        ratios.append(
            Ratio(
                f"append, {batch}-event transactions, vs eventsourcing (best of each)",
                best["ours"][batch],
                best["peer"][batch],
                8.0,
                "events/s",
            )
        )
    series = {
        "throughput": {
            **{f"append x{batch}": points for batch, points in series_ours.items()},
            **{f"eventsourcing x{batch}": points for batch, points in series_peer.items()},
            "pgbench 1-row insert": series_pgbench,
        }
    }
    return Section(
        key="append",
        title="Append: events per second",
        columns=[
            "writers",
            "events per append",
            "ours ev/s",
            "eventsourcing ev/s",
            "pgbench rows/s",
            "ours / pgbench",
            "ours / eventsourcing",
        ],
        rows=rows,
        ratios=ratios,
        series=series,
        notes=[
            f"Each stored event row is {row_bytes} bytes; pgbench inserts rows of that size.",
            "pgbench inserts with no lock, hash or ordering; ours and eventsourcing's "
            "serialise position assignment, so their commits cannot overlap.",
        ],
    )
