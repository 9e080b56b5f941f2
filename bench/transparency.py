"""The transparency log (issue 18): the checkpointer keeping up with the
append rate, and inclusion-proof latency on a large tree.

Keeping up: writers append as the append section's do (bench.append), and
the real checkpointer (ksmart_checkpointer.TransparencyLog, following as
its timer does, in a process of its own as it runs) absorbs the events
and signs checkpoints, here every CHECKPOINT_SECONDS:
- capacity: events appended with no checkpointer for a while (the append
  rate, the reference), then the checkpointer started on that backlog:
  the rate it absorbs it at must reach the rate it was made at;
- side by side: appending with the checkpointer running, its lag behind
  the store (events in no checkpoint yet, and the oldest one's age) at
  most and when the writers stop, and the time each checkpoint took to
  sign (the root from the stored peaks, the signature, the insert).

Proof latency: a tree of PROOF_LEAVES leaves generated straight into the
log's tables (every perfect subtree's hash, as the checkpointer stores
them, from random event hashes) with a signed checkpoint of its size;
then the checkpointer's own answers, timed: an inclusion proof
(`inclusion_proof`, what GET /log/proofs/inclusion serves) and an event's
proof by its position (`included`, what a file's page and the
certificate check ask), against one primary-key read of a node, the
floor of any answer from these tables. Through the gateway a proof adds
one RPC over RabbitMQ, which the e2e section measures for every call.
"""

from __future__ import annotations

import base64
import io
import multiprocessing
import os
import random
import statistics
import threading
import time

import sqlalchemy as sa

from bench.append import appending, run_writers
from bench.core import Progress, Ratio, Section, Settings
from ksmart_checkpointer import tree_storage
from ksmart_checkpointer.settings import LogSettings, tick_seconds
from ksmart_checkpointer.store import LogStore
from ksmart_checkpointer.transparency_log import TransparencyLog
from ksmart_common import ed25519, merkle
from ksmart_common.checkpoint import Checkpoint
from ksmart_common.eventstore import EventStore
from ksmart_common.signed_note import Signer, sign
from tests.support.databases import fresh_service_database

ORIGIN = "bench.ksmart.local/events"
CHECKPOINT_SECONDS = 1.0
WRITERS = 4
BATCH = 10
SAMPLE_SECONDS = 0.1


# -- the checkpointer, in a process of its own -------------------------------------


def _checkpointer(url: str, stop, results) -> None:
    """Follow as the service's timer does (every tick_seconds) until told
    to stop; report how long each checkpoint took to sign."""
    engine = sa.create_engine(url, pool_size=2)
    store = LogStore(engine)
    signing_seconds: list[float] = []
    sign_if_due = store.sign_if_due

    def timed_sign_if_due(*args, **kwargs):
        started = time.perf_counter()
        signed = sign_if_due(*args, **kwargs)
        if signed is not None:
            signing_seconds.append(time.perf_counter() - started)
        return signed

    store.sign_if_due = timed_sign_if_due
    settings = LogSettings(
        signer=Signer(ORIGIN, ed25519.generate_private_key()),
        checkpoint_seconds=CHECKPOINT_SECONDS,
        witnesses=(),
    )
    log = TransparencyLog(store, settings, spawn=lambda work: None)
    tick = tick_seconds({"KSMART_CHECKPOINT_SECONDS": str(CHECKPOINT_SECONDS)})
    while not stop.is_set():
        log.follow()
        stop.wait(tick)
    engine.dispose()
    results.put(signing_seconds)


class Checkpointer:
    def __init__(self, url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop_event = context.Event()
        self.results = context.Queue()
        self.process = context.Process(
            target=_checkpointer, args=(url, self.stop_event, self.results), daemon=True
        )

    def __enter__(self) -> Checkpointer:
        self.process.start()
        return self

    def stop(self) -> list[float]:
        self.stop_event.set()
        signing = self.results.get(timeout=60)
        self.process.join(30)
        return signing

    def __exit__(self, *exc) -> None:
        if self.process.is_alive():
            self.process.terminate()


def _tree_size(store: LogStore) -> int:
    return store.head().size


def _events(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()


def _wait_until(condition, timeout: float) -> float:
    """Seconds until `condition()` holds (pacing a measurement)."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise RuntimeError("the checkpointer did not catch up in time")
        time.sleep(0.01)
    return time.perf_counter() - started


def keeping_up(database, seconds: float, progress: Progress) -> dict:
    engine = sa.create_engine(database.service_url, pool_size=WRITERS + 2)
    store = EventStore(engine)
    log_engine = sa.create_engine(database.url_as("checkpointer"), pool_size=2)
    log_store = LogStore(log_engine)
    append = appending(store, BATCH)
    for _ in range(20):
        append()
    try:
        # Capacity: a backlog made at the append rate, then absorbed.
        append_rate = run_writers(WRITERS, seconds, append)
        backlog = _events(engine)
        progress(f"transparency: {backlog:,} events appended at {append_rate:,.0f} ev/s")
        with Checkpointer(database.url_as("checkpointer")) as checkpointer:
            started = time.perf_counter()
            _wait_until(lambda: _tree_size(log_store) >= backlog, 600)
            absorb_rate = backlog / (time.perf_counter() - started)
            progress(f"transparency: the backlog absorbed at {absorb_rate:,.0f} ev/s")
            _wait_until(lambda: log_store.lag()[0] == 0, 60)

            # Side by side: appending with the checkpointer following.
            lags: list[tuple[int, float]] = []
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    lags.append(log_store.lag())
                    done.wait(SAMPLE_SECONDS)

            sampler = threading.Thread(target=sample)
            tree_before, events_before = _tree_size(log_store), _events(engine)
            sampler.start()
            started = time.perf_counter()
            live_rate = run_writers(WRITERS, seconds, append)
            window = time.perf_counter() - started
            done.set()
            sampler.join()
            end_lag = log_store.lag()
            absorbed_live = (_tree_size(log_store) - tree_before) / window
            appended = _events(engine) - events_before
            caught_up = _wait_until(lambda: log_store.lag()[0] == 0, 60)
            signing = checkpointer.stop()
        progress(
            f"transparency: live {live_rate:,.0f} ev/s appended, {absorbed_live:,.0f} absorbed;"
            f" lag at most {max(lag for lag, _ in lags):,} events"
        )
    finally:
        store.close()
        engine.dispose()
        log_engine.dispose()
    return {
        "append_rate": append_rate,
        "absorb_rate": absorb_rate,
        "backlog": backlog,
        "live_rate": live_rate,
        "live_appended": appended,
        "absorbed_live": absorbed_live,
        "max_lag_events": max(lag for lag, _ in lags),
        "max_lag_seconds": max(age for _, age in lags),
        "end_lag_events": end_lag[0],
        "end_lag_seconds": end_lag[1],
        "caught_up_seconds": caught_up,
        "signing_ms": [s * 1000 for s in signing],
    }


# -- a large tree, and proofs from it ----------------------------------------------


def _copy(conn, table: str, columns: str, lines: list[str]) -> None:
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cursor:
        cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", io.StringIO("".join(lines)))


def generate_tree(database, leaves: int) -> merkle.CompactRange:
    """`leaves` random event hashes as the log stores them: their leaves,
    every perfect subtree's hash, and a signed checkpoint of that size."""
    data = os.urandom(32 * leaves)
    edge = merkle.CompactRange()
    hashed = (merkle.leaf_hash(data[i : i + 32]) for i in range(0, len(data), 32))
    nodes = [
        f"{level}\t{index}\t\\\\x{value.hex()}\n"
        for level, index, value in tree_storage.new_nodes(edge, hashed)
    ]
    note = sign(
        Checkpoint(ORIGIN, leaves, edge.root()).text(),
        Signer(ORIGIN, ed25519.generate_private_key()),
    )
    engine = sa.create_engine(database.superuser_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        _copy(conn, "log_nodes", "level, node_index, hash", nodes)
        _copy(conn, "log_leaves", "leaf_index, global_position", _leaf_lines(leaves))
        conn.execute(
            sa.text("INSERT INTO log_checkpoints (tree_size, root_hash, note) VALUES (:s, :r, :n)"),
            {"s": leaves, "r": edge.root(), "n": note},
        )
        conn.execute(sa.text("ANALYZE log_nodes; ANALYZE log_leaves"))
    engine.dispose()
    return edge


def _leaf_lines(leaves: int) -> list[str]:
    return [f"{index}\t{index + 1}\n" for index in range(leaves)]


def _timed(work, samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return times


def _median_p99_ms(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


def proof_latency(database, leaves: int, samples: int, progress: Progress) -> dict:
    started = time.perf_counter()
    edge = generate_tree(database, leaves)
    progress(f"transparency: a tree of {leaves:,} leaves in {time.perf_counter() - started:.1f}s")
    engine = sa.create_engine(database.url_as("checkpointer"), pool_size=2)
    store = LogStore(engine)
    settings = LogSettings(Signer(ORIGIN, ed25519.generate_private_key()), CHECKPOINT_SECONDS, ())
    log = TransparencyLog(store, settings, spawn=lambda work: None)
    rng = random.Random(18)
    try:
        # Each answer checked once: the tables hold a tree that proves.
        index = rng.randrange(leaves)
        proof = log.inclusion_proof(index, leaves)
        leaf = store.leaf_hashes(index, index + 1)[0]
        merkle.verify_inclusion(
            index, leaves, bytes(leaf), [base64.b64decode(h) for h in proof["hashes"]], edge.root()
        )
        assert log.included([index + 1])[str(index + 1)]["index"] == index

        def node_read() -> None:
            with engine.connect() as conn:
                conn.execute(
                    sa.text("SELECT hash FROM log_nodes WHERE level = 0 AND node_index = :i"),
                    {"i": rng.randrange(leaves)},
                ).scalar_one()

        for work in (node_read, lambda: log.inclusion_proof(rng.randrange(leaves), leaves)):
            _timed(work, 20)  # warm the pool and the caches
        read = _timed(node_read, samples)
        inclusion = _timed(lambda: log.inclusion_proof(rng.randrange(leaves), leaves), samples)
        included = _timed(lambda: log.included([rng.randrange(leaves) + 1]), samples)
    finally:
        engine.dispose()
    return {
        "read": _median_p99_ms(read),
        "inclusion": _median_p99_ms(inclusion),
        "included": _median_p99_ms(included),
        "proof_hashes": len(proof["hashes"]),
    }


def run(settings: Settings, progress: Progress) -> Section:
    seconds = settings.pick(10.0, 3.0)
    leaves = settings.pick(1_000_000, 200_000)
    samples = settings.pick(2_000, 300)
    with fresh_service_database("applications") as database:
        kept = keeping_up(database, seconds, progress)
    with fresh_service_database("applications") as database:
        latency = proof_latency(database, leaves, samples, progress)
    signing = kept["signing_ms"]
    rows = [
        ["appended, no checkpointer (reference)", f"{kept['append_rate']:,.0f} ev/s", ""],
        [
            f"backlog of {kept['backlog']:,} absorbed by the checkpointer",
            f"{kept['absorb_rate']:,.0f} ev/s",
            f"{kept['absorb_rate'] / kept['append_rate']:.1f}x the append rate",
        ],
        [
            "appended / absorbed, side by side",
            f"{kept['live_rate']:,.0f} / {kept['absorbed_live']:,.0f} ev/s",
            f"{kept['live_appended']:,} events in {seconds:.0f}s",
        ],
        [
            "lag: most / when the writers stop",
            f"{kept['max_lag_events']:,} / {kept['end_lag_events']:,} events",
            f"{kept['max_lag_seconds']:.2f} / {kept['end_lag_seconds']:.2f} s",
        ],
        ["caught up after the writers stop", f"{kept['caught_up_seconds']:.2f} s", ""],
        [
            "signing a checkpoint: median / most",
            f"{statistics.median(signing):.1f} / {max(signing):.1f} ms" if signing else "-",
            f"{len(signing)} checkpoints, one at most every {CHECKPOINT_SECONDS:g} s",
        ],
        [
            f"one node read, tree of {leaves:,} (reference)",
            "{:.2f} / {:.2f} ms".format(*latency["read"]),
            "median / p99",
        ],
        [
            "inclusion proof (GET /log/proofs/inclusion)",
            "{:.2f} / {:.2f} ms".format(*latency["inclusion"]),
            f"median / p99; {latency['proof_hashes']} hashes",
        ],
        [
            "an event's proof by position (a file's, a certificate's)",
            "{:.2f} / {:.2f} ms".format(*latency["included"]),
            "median / p99",
        ],
    ]
    return Section(
        key="transparency",
        title="Transparency log: the checkpointer keeping up, and proof latency",
        columns=["measure", "value", "note"],
        rows=rows,
        ratios=[
            Ratio(
                "checkpointer absorbing a backlog vs the append rate it was made at",
                kept["absorb_rate"],
                kept["append_rate"],
                1.0,
                "events/s",
            ),
            Ratio(
                f"inclusion proof (median) vs one node read, tree of {leaves:,}",
                latency["inclusion"][0],
                latency["read"][0],
                0.2,
                "ms",
                higher_is_better=False,
            ),
        ],
        notes=[
            f"{WRITERS} writers appending {BATCH}-event files, as the append section does; "
            f"the checkpointer (its own process, the real code) follows every "
            f"{tick_seconds({'KSMART_CHECKPOINT_SECONDS': str(CHECKPOINT_SECONDS)}):g} s and "
            f"signs at most every {CHECKPOINT_SECONDS:g} s (production: 10 s).",
            "Lag counts events in no checkpoint yet (absorbed or not), and the age of the "
            "oldest: it includes the wait for the next checkpoint.",
            "A proof reads the latest checkpoint and the nodes it needs in one query "
            "(tree_storage.proof_keys); an event's proof also reads its leaf index.",
        ],
    )
