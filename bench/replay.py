"""Replay (issue 3, item 4): how fast the whole log is verified and the file
projection rebuilt, against the raw rate of fetching the same rows with
psycopg2's server-side cursor, and whether memory stays flat as the log grows.

A fresh applications database is filled with a valid log (bench/replay_data:
files of ~5 events, interleaved in position order, sealed by the store's own
`seal`, loaded by COPY), once at the full size and once at a tenth of it
(a fifth in quick mode). Each measurement then runs in a process of its own
(bench/replay_measure), so its peak RSS is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.core import Progress, Ratio, Section, Settings
from bench.replay_data import load
from bench.replay_measure import dsn_of
from tests.support.databases import fresh_service_database

ROOT = Path(__file__).resolve().parents[1]
MEASURES = {
    "raw": "raw fetch (psycopg2 server-side cursor)",
    "verify": "audit verification (iter_by_stream + verify_chain + Merkle root)",
    "rebuild": "rebuild of the files projection (rebuild_files)",
}
RATE_TARGET = 0.5
# Issue 18: the chains and the transparency log's root together.
VERIFY_RATE_TARGET = 0.7
MEMORY_GROWTH_ALLOWED = 1.25


def _measure(*args: str) -> dict:
    finished = subprocess.run(
        [sys.executable, "-m", "bench.replay_measure", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"replay measurement {args[0]} failed:\n{finished.stderr[-3000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def run(settings: Settings, progress: Progress) -> Section:
    big = settings.pick(1_000_000, 50_000)
    small = big // settings.pick(10, 5)
    results: dict[tuple[str, int], dict] = {}
    notes = [
        "Each measurement runs in a process of its own; its peak RSS includes the"
        " interpreter and its imports (about 40 MiB before any event is read).",
        "The raw fetch reads every column typed by psycopg2 (data and metadata parsed"
        " by json.loads, recorded_at as a datetime), 2,000 rows a fetch.",
        "The audit verification, per event: its row read with data and metadata as"
        " their stored text (EventStore.iter_by_stream(stored=True), one server-side"
        " cursor in stream order, 2,000 rows a fetch), both texts parsed (json.loads)"
        " into the envelope; the hashed text built from the columns with the row's"
        " texts spliced in verbatim and its SHA-256 compared with the stored hash; the"
        " canonical check (the envelope encoded again, compared byte for byte with"
        " that text); per stream, versions 1, 2, 3 ... each linking to the hash before"
        " (verify_chain); then a second cursor in position order for the Merkle root:"
        " each stored hash's leaf hash fed to CompactRange.extend a fetch at a time.",
    ]
    with (
        fresh_service_database("applications") as small_db,
        fresh_service_database("applications") as big_db,
        fresh_service_database("workflow") as workflow_db,
    ):
        for count, database in ((small, small_db), (big, big_db)):
            progress(f"replay: generating {count:,} events")
            started = time.perf_counter()
            load(dsn_of(database.superuser_url), count, progress)
            seconds = time.perf_counter() - started
            notes.append(
                f"{count:,} events generated, sealed and loaded by COPY in {seconds:.1f} s"
                f" ({count / seconds:,.0f} events/s)"
            )
            progress(f"replay: {count:,} events loaded in {seconds:.1f} s")
        for count, database in ((small, small_db), (big, big_db)):
            for measure in MEASURES:
                progress(f"replay: {measure} over {count:,} events")
                if measure == "raw":
                    args = [measure, dsn_of(database.service_url)]
                elif measure == "verify":
                    args = [measure, database.service_url]
                else:
                    table = f"files_rebuilt_{count}"
                    args = [measure, database.service_url, workflow_db.superuser_url, table]
                result = _measure(*args)
                if result["events"] != count:
                    raise RuntimeError(f"{measure} saw {result['events']} events, not {count}")
                result["rate"] = count / result["seconds"]
                results[measure, count] = result
                progress(
                    f"replay: {measure} {result['rate']:,.0f} events/s,"
                    f" peak RSS {result['peak_rss_mib']:.1f} MiB"
                )

    rows = [
        [
            MEASURES[measure],
            count,
            round(results[measure, count]["rate"]),
            round(results[measure, count]["peak_rss_mib"], 1),
        ]
        for count in (small, big)
        for measure in MEASURES
    ]
    raw_rate = results["raw", big]["rate"]
    ratios = [
        Ratio(
            f"{name} rate ÷ raw fetch rate ({big:,} events)",
            ours=results[measure, big]["rate"],
            reference=raw_rate,
            target=VERIFY_RATE_TARGET if measure == "verify" else RATE_TARGET,
            unit="events/s",
        )
        for measure, name in (("verify", "audit verification"), ("rebuild", "rebuild"))
    ]
    ratios += [
        Ratio(
            f"{name} memory: peak RSS at {small:,} ÷ at {big:,} events"
            f" (met when it grows by less than {MEMORY_GROWTH_ALLOWED - 1:.0%})",
            ours=results[measure, big]["peak_rss_mib"],
            reference=results[measure, small]["peak_rss_mib"],
            target=1 / MEMORY_GROWTH_ALLOWED,
            unit="MiB",
            higher_is_better=False,
        )
        for measure, name in (("verify", "audit verification"), ("rebuild", "rebuild"))
    ]
    return Section(
        key="replay",
        title="Replay: audit verification and projection rebuild against a raw fetch",
        columns=["measure", "events", "events/s", "peak RSS MiB"],
        rows=rows,
        ratios=ratios,
        series={
            "replay": {
                MEASURES[measure]: [
                    [count, results[measure, count]["rate"]] for count in (small, big)
                ]
                for measure in MEASURES
            }
        },
        notes=notes,
    )
