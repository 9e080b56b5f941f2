"""End to end: applications submitted per second through the gateway, with
real tokens and validation, at rising concurrency; the time until the
workflow projection shows a submitted file; and beside them the bare
ceiling of the same framework path (bench/ceiling.py: an HTTP entrypoint
making one RPC call that does nothing), loaded the same way.

The load comes from locust headless (bench/locustfile.py), one subprocess
per level, on loopback. The projection latency comes from a sampler in this
process: it submits a file every SAMPLE_INTERVAL_SECONDS during each level
and polls the workflow database until the file's row appears.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from bench.core import Progress, Ratio, Section, Settings
from ksmart_ops.devserver import wait_for_exit
from tests.support import citizen
from tests.support.broker import fresh_vhost
from tests.support.platform import Platform, free_port, running_platform

REPO = Path(__file__).resolve().parent.parent
LOCUST = Path(sys.executable).with_name("locust")
LOCUSTFILE = Path(__file__).resolve().with_name("locustfile.py")

SERVICE_CODE = "birth-certificate"
LOCAL_BODY = "KL-EKM-KOC"

THROUGHPUT_TARGET = 0.70  # of the bare ceiling
P99_TARGET_MS = 250.0  # at PACED_FRACTION of the maximum rate
PACED_FRACTION = 0.70
# A level whose p99 or failure rate passes these ends the rise in concurrency.
BREAK_P99_MS = 2_000.0
BREAK_FAILURE_RATE = 0.05

SAMPLE_INTERVAL_SECONDS = 0.1
POLL_INTERVAL_SECONDS = 0.005
PROJECTION_DEADLINE_SECONDS = 15.0
CEILING_READY_SECONDS = 30.0
LOCUST_GRACE_SECONDS = 90.0  # sign-ins, start-up and shut-down around the window


# -- statistics ----------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# -- locust --------------------------------------------------------------------


@dataclass
class LoadResult:
    users: int
    requests: int
    failures: int
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    locust_cpu_warning: bool = False
    locust_cpu_share: float = 0.0  # locust's CPU seconds per second of its run

    @property
    def failure_rate(self) -> float:
        return self.failures / self.requests if self.requests else 1.0


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "N/A" when nothing was recorded
        return None


def run_locust(
    host: str,
    mode: str,
    users: int,
    seconds: float,
    body_file: Path,
    csv_prefix: Path,
    password: str = "",
    rate_per_user: float = 0.0,
) -> LoadResult:
    """One headless locust run; the 'Aggregated' row of its stats CSV.
    The measured window opens once every user has signed in."""
    env = {
        **os.environ,
        "KSMART_BENCH_MODE": mode,
        "KSMART_BENCH_BODY_FILE": str(body_file),
        "KSMART_BENCH_PASSWORD": password,
        "KSMART_BENCH_MEASURE_SECONDS": str(seconds),
        "KSMART_BENCH_RATE_PER_USER": str(rate_per_user),
    }
    argv = [
        str(LOCUST),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        # A safety limit only: the locustfile quits `seconds` after sign-in.
        "-t",
        f"{int(seconds + LOCUST_GRACE_SECONDS / 2)}s",
        "--host",
        host,
        "--csv",
        str(csv_prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    # subprocess.run kills locust if it overruns or if we are interrupted.
    cpu_before = _children_cpu_seconds()
    started = time.monotonic()
    finished = subprocess.run(
        argv,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=seconds + LOCUST_GRACE_SECONDS,
        check=False,
    )
    # locust is the only child process reaped meanwhile: its CPU time.
    cpu_share = (_children_cpu_seconds() - cpu_before) / (time.monotonic() - started)
    stats_file = Path(f"{csv_prefix}_stats.csv")
    if not stats_file.exists():
        raise RuntimeError(
            f"locust wrote no statistics (exit {finished.returncode}):\n{finished.stderr[-2000:]}"
        )
    with stats_file.open(newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows.get("Aggregated")
    if total is None or int(total["Request Count"]) == 0:
        raise RuntimeError(f"locust recorded no requests:\n{finished.stderr[-2000:]}")
    return LoadResult(
        users=users,
        requests=int(total["Request Count"]),
        failures=int(total["Failure Count"]),
        rps=float(total["Requests/s"]),
        p50_ms=_number(total["50%"]),
        p95_ms=_number(total["95%"]),
        p99_ms=_number(total["99%"]),
        locust_cpu_warning="CPU usage above" in finished.stderr,
        locust_cpu_share=cpu_share,
    )


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- projection latency ---------------------------------------------------------


@dataclass
class ProjectionSamples:
    latencies_ms: list[float] = field(default_factory=list)
    submitted: int = 0
    submit_failures: int = 0
    unseen: int = 0

    def at(self, fraction: float) -> float | None:
        return rounded(percentile(self.latencies_ms, fraction))


class ProjectionSampler:
    """Submits a file every SAMPLE_INTERVAL_SECONDS and records, for each
    one, the time from its 201 response until a poll of the workflow
    database first finds its row in `files` (polled every
    POLL_INTERVAL_SECONDS, so each figure is an upper bound by at most one
    poll interval plus one query)."""

    def __init__(self, base_url: str, token: str, body: bytes, workflow_url: str) -> None:
        self.url = f"{base_url}/api/v1/files"
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.body = body
        self.engine = sa.create_engine(workflow_url, poolclass=sa.pool.NullPool)
        self.samples = ProjectionSamples()
        self.pending: dict[str, float] = {}  # file id -> when its 201 arrived
        self.lock = threading.Lock()
        self.stop_submitting = threading.Event()
        self.stop_polling = threading.Event()
        self.threads = [
            threading.Thread(target=self._submit_loop, name="sampler-submit", daemon=True),
            threading.Thread(target=self._poll_loop, name="sampler-poll", daemon=True),
        ]
        self.poll_error: BaseException | None = None
        self.finished = False

    def __enter__(self) -> ProjectionSampler:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.finish()

    def _submit_loop(self) -> None:
        with requests.Session() as session:
            next_at = time.monotonic()
            while not self.stop_submitting.is_set():
                file_id = None
                try:
                    reply = session.post(self.url, data=self.body, headers=self.headers, timeout=10)
                    answered = time.monotonic()
                    if reply.status_code == 201:
                        file_id = reply.json()["file_id"]
                except requests.RequestException:
                    pass
                with self.lock:
                    self.samples.submitted += 1
                    if file_id is not None:
                        self.pending[file_id] = answered
                    else:
                        self.samples.submit_failures += 1
                next_at += SAMPLE_INTERVAL_SECONDS
                self.stop_submitting.wait(max(0.0, next_at - time.monotonic()))

    def _poll_loop(self) -> None:
        query = sa.text("SELECT file_id::text FROM files WHERE file_id = ANY(CAST(:ids AS uuid[]))")
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                while not self.stop_polling.is_set():
                    with self.lock:
                        ids = list(self.pending)
                    if ids:
                        polled_at = time.monotonic()
                        found = conn.execute(query, {"ids": ids}).scalars().all()
                        with self.lock:
                            for file_id in found:
                                answered = self.pending.pop(file_id)
                                self.samples.latencies_ms.append(
                                    max(0.0, polled_at - answered) * 1000
                                )
                    self.stop_polling.wait(POLL_INTERVAL_SECONDS)
        except BaseException as error:  # reported by finish()
            self.poll_error = error

    def finish(self) -> ProjectionSamples:
        """Stop submitting; wait (with a deadline) for the files still pending."""
        if self.finished:
            return self.samples
        self.finished = True
        self.stop_submitting.set()
        self.threads[0].join(timeout=15)
        deadline = time.monotonic() + PROJECTION_DEADLINE_SECONDS
        while time.monotonic() < deadline and self.threads[1].is_alive():
            with self.lock:
                if not self.pending:
                    break
            time.sleep(POLL_INTERVAL_SECONDS)
        self.stop_polling.set()
        self.threads[1].join(timeout=15)
        self.engine.dispose()
        if self.poll_error is not None:
            raise RuntimeError("the projection sampler failed") from self.poll_error
        with self.lock:
            self.samples.unseen = len(self.pending)
        return self.samples


# -- the bare ceiling -----------------------------------------------------------


@contextlib.contextmanager
def running_ceiling(run_dir: Path, body: bytes) -> Iterator[str]:
    """bench/ceiling.py's two processes on a fresh vhost and a free port;
    yields the base URL once POST /noop answers 201."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with fresh_vhost() as amqp_uri:
        address = f"127.0.0.1:{free_port()}"
        env = {**os.environ, "KSMART_AMQP_URI": amqp_uri, "KSMART_GATEWAY_ADDRESS": address}
        processes: dict[str, subprocess.Popen] = {}
        try:
            for role in ("service", "gateway"):
                with (run_dir / f"ceiling-{role}.log").open("ab") as log:
                    processes[role] = subprocess.Popen(
                        [sys.executable, "-m", "bench.ceiling", role],
                        env=env,
                        cwd=REPO,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
            _wait_for_ceiling(f"http://{address}", body, processes, run_dir)
            yield f"http://{address}"
        finally:
            for process in processes.values():
                process.terminate()
            wait_for_exit(processes, timeout=15)


def _wait_for_ceiling(
    base_url: str, body: bytes, processes: dict[str, subprocess.Popen], run_dir: Path
) -> None:
    deadline = time.monotonic() + CEILING_READY_SECONDS
    while time.monotonic() < deadline:
        for role, process in processes.items():
            if process.poll() is not None:
                log = (run_dir / f"ceiling-{role}.log").read_text(errors="replace")
                raise RuntimeError(
                    f"ceiling {role} exited with {process.returncode}:\n{log[-2000:]}"
                )
        request = urllib.request.Request(
            f"{base_url}/noop", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as reply:
                if reply.status == 201:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the bare ceiling was not ready within {CEILING_READY_SECONDS}s")


# -- the section ------------------------------------------------------------------


@dataclass
class Level:
    load: LoadResult
    projection: ProjectionSamples


def _measure_platform_level(
    platform: Platform,
    body: bytes,
    body_file: Path,
    csv_prefix: Path,
    users: int,
    seconds: float,
    rate_per_user: float = 0.0,
) -> Level:
    sampler = ProjectionSampler(
        platform.base_url,
        platform.token("citizen"),
        body,
        platform.databases["workflow"].superuser_url,
    )
    with sampler:
        load = run_locust(
            platform.base_url,
            "submit",
            users,
            seconds,
            body_file,
            csv_prefix,
            password=platform.password,
            rate_per_user=rate_per_user,
        )
    return Level(load, sampler.finish())


def _warm_up(platform: Platform, body: bytes, count: int, user: str = "citizen") -> None:
    """A few submissions on a few connections: JWKS fetched, pools filled."""
    headers = {**platform.as_user(user), "Content-Type": "application/json"}

    def submit_some(times: int) -> None:
        with requests.Session() as session:
            for _ in range(times):
                reply = session.post(
                    f"{platform.base_url}/api/v1/files", data=body, headers=headers, timeout=10
                )
                if reply.status_code != 201:
                    raise RuntimeError(f"warm-up submit failed: {reply.status_code} {reply.text}")

    errors: list[BaseException] = []

    def guarded(times: int) -> None:
        try:
            submit_some(times)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(count // 4,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]


def _cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return total


def _pids_running(word: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if word in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_per_submission(platform: Platform, run_dir: Path, body: bytes, count: int) -> str:
    """Where a submission's time goes: CPU each process spends per submitted
    file, from the request to its projection, on this shared machine."""
    count = count // 4 * 4  # _warm_up submits from four threads
    # Every process the platform started (the gateway, each service, the
    # relay), then the two servers they share.
    groups = {
        pid_file.stem: [int(pid_file.read_text())] for pid_file in sorted(run_dir.glob("*.pid"))
    }
    groups["PostgreSQL"] = _pids_running("postgres")
    groups["RabbitMQ"] = _pids_running("beam.smp")

    def projected_everything() -> bool:
        with platform.engine("applications").connect() as conn:
            filed = conn.execute(
                sa.text("SELECT count(*) FROM events WHERE event_type = 'ApplicationSubmitted'")
            ).scalar()
        with platform.engine("workflow").connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM files")).scalar() >= filed

    def settle() -> None:
        deadline = time.monotonic() + PROJECTION_DEADLINE_SECONDS * 4
        while not projected_everything():
            if time.monotonic() > deadline:
                raise RuntimeError("the projection did not catch up")
            time.sleep(POLL_INTERVAL_SECONDS * 10)

    settle()
    before = {name: _cpu_seconds(pids) for name, pids in groups.items()}
    _warm_up(platform, body, count)
    settle()
    spent = {
        name: (_cpu_seconds(pids) - before[name]) * 1000 / count for name, pids in groups.items()
    }
    parts = ", ".join(f"{name} {ms:.1f}" for name, ms in spent.items())
    return (
        f"CPU per submission, from request to projection ({count} submissions, 4 at a time):"
        f" {parts}; {sum(spent.values()):.1f} ms in all, on 2 cores. The bare ceiling's"
        " path spends its CPU in two processes and RabbitMQ only; ours also stores,"
        " relays and projects every file on the same cores."
    )


def run(settings: Settings, progress: Progress) -> Section:
    levels_users = settings.pick([2, 5, 10, 20, 40], [2, 10])
    seconds = settings.pick(15.0, 5.0)
    warm_up_count = settings.pick(200, 60)
    notes: list[str] = []
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="ksmart-bench-e2e-") as tmp:
        work = Path(tmp)
        progress("e2e: starting the platform (fresh databases and vhost)")
        with running_platform(work / "platform") as platform:
            # A complete application, its documents uploaded once by the
            # citizen every simulated user signs in as.
            application = citizen.application(platform, SERVICE_CODE)
            body = json.dumps(application).encode()
            body_file = work / "application.json"
            body_file.write_bytes(body)
            progress(f"e2e: warming up ({warm_up_count} submissions)")
            _warm_up(platform, body, warm_up_count)

            submit_levels: list[Level] = []
            for users in levels_users:
                progress(f"e2e: submit load, {users} users for {seconds:.0f} s")
                level = _measure_platform_level(
                    platform, body, body_file, work / f"submit-{users}", users, seconds
                )
                submit_levels.append(level)
                progress(
                    f"e2e:   {level.load.rps:.0f} req/s, p99 {level.load.p99_ms} ms, "
                    f"{level.load.failures} failures; projection p99 {level.projection.at(0.99)} ms"
                )
                if (level.load.p99_ms or 0) > BREAK_P99_MS or (
                    level.load.failure_rate > BREAK_FAILURE_RATE
                ):
                    notes.append(
                        f"Latency broke at {users} users (p99 {level.load.p99_ms} ms, "
                        f"{level.load.failures} failures of {level.load.requests}); "
                        "higher levels were not run."
                    )
                    break

            best = max(submit_levels, key=lambda level: level.load.rps)
            paced_rate = PACED_FRACTION * best.load.rps
            paced_users = best.load.users
            progress(
                f"e2e: paced load at {PACED_FRACTION:.0%} of max: {paced_rate:.0f} req/s "
                f"from {paced_users} users"
            )
            paced = _measure_platform_level(
                platform,
                body,
                body_file,
                work / "submit-paced",
                paced_users,
                seconds,
                rate_per_user=paced_rate / paced_users,
            )
            progress(f"e2e:   {paced.load.rps:.0f} req/s, p99 {paced.load.p99_ms} ms")
            progress("e2e: CPU per submission, process by process")
            notes.append(cpu_per_submission(platform, work / "platform", body, warm_up_count))
            progress("e2e: stopping the platform")

        progress("e2e: starting the bare ceiling (nameko HTTP -> one no-op RPC)")
        ceiling_levels: list[LoadResult] = []
        with running_ceiling(work / "ceiling", body) as ceiling_url:
            with requests.Session() as session:
                for _ in range(warm_up_count):
                    session.post(f"{ceiling_url}/noop", data=body, timeout=10).raise_for_status()
            for users in levels_users:
                progress(f"e2e: ceiling load, {users} users for {seconds:.0f} s")
                result = run_locust(
                    ceiling_url, "ceiling", users, seconds, body_file, work / f"ceiling-{users}"
                )
                ceiling_levels.append(result)
                progress(f"e2e:   {result.rps:.0f} req/s, p99 {result.p99_ms} ms")

    notes.append(
        f"Load average (1 min) before the run: {load_before:.1f}. Anything else running on "
        "the machine (other benchmarks, tests) takes CPU from the services and skews both "
        "sides; compare runs made on a quiet machine."
    )
    return _section(
        settings, levels_users, seconds, submit_levels, paced, paced_rate, ceiling_levels, notes
    )


def _section(
    settings: Settings,
    levels_users: list[int],
    seconds: float,
    submit_levels: list[Level],
    paced: Level,
    paced_rate: float,
    ceiling_levels: list[LoadResult],
    notes: list[str],
) -> Section:
    by_users = {level.load.users: level for level in submit_levels}
    ceiling_by_users = {result.users: result for result in ceiling_levels}
    rows: list[list[Any]] = []
    for users in levels_users:
        level = by_users.get(users)
        ceiling = ceiling_by_users.get(users)
        rows.append(
            [
                users,
                rounded(level.load.rps) if level else None,
                level.load.p50_ms if level else None,
                level.load.p95_ms if level else None,
                level.load.p99_ms if level else None,
                level.load.failures if level else None,
                level.projection.at(0.50) if level else None,
                level.projection.at(0.95) if level else None,
                level.projection.at(0.99) if level else None,
                rounded(ceiling.rps) if ceiling else None,
                ceiling.p99_ms if ceiling else None,
            ]
        )
    rows.append(
        [
            f"{paced.load.users} paced at {paced_rate:.0f} req/s",
            rounded(paced.load.rps),
            paced.load.p50_ms,
            paced.load.p95_ms,
            paced.load.p99_ms,
            paced.load.failures,
            paced.projection.at(0.50),
            paced.projection.at(0.95),
            paced.projection.at(0.99),
            None,
            None,
        ]
    )

    max_submit = max(level.load.rps for level in submit_levels)
    max_ceiling = max(result.rps for result in ceiling_levels)
    ratios = [
        Ratio(
            "submit throughput vs bare ceiling",
            ours=round(max_submit, 1),
            reference=round(max_ceiling, 1),
            target=THROUGHPUT_TARGET,
            unit="req/s",
        ),
        Ratio(
            f"p99 submit latency at {PACED_FRACTION:.0%} of max rate",
            ours=paced.load.p99_ms or 0.0,
            reference=P99_TARGET_MS,
            target=1.0,
            unit="ms",
            higher_is_better=False,
        ),
    ]

    def points(pairs) -> list[list[float]]:
        return [[users, value] for users, value in pairs if value is not None]

    series = {
        "throughput": {
            "submit": points((level.load.users, level.load.rps) for level in submit_levels),
            "bare ceiling": points((result.users, result.rps) for result in ceiling_levels),
        },
        "latency": {
            "submit p50": points((level.load.users, level.load.p50_ms) for level in submit_levels),
            "submit p99": points((level.load.users, level.load.p99_ms) for level in submit_levels),
            "projection p99": points(
                (level.load.users, level.projection.at(0.99)) for level in submit_levels
            ),
            "bare ceiling p99": points((result.users, result.p99_ms) for result in ceiling_levels),
        },
    }

    samples = [level.projection for level in submit_levels] + [paced.projection]
    unseen = sum(sample.unseen for sample in samples)
    sampler_failures = sum(sample.submit_failures for sample in samples)
    busiest_submit = max(submit_levels, key=lambda level: level.load.rps).load
    busiest_ceiling = max(ceiling_levels, key=lambda result: result.rps)
    cpu_warned = any(level.load.locust_cpu_warning for level in submit_levels) or any(
        result.locust_cpu_warning for result in ceiling_levels
    )
    notes = [
        f"Everything runs on this machine ({os.cpu_count()} cores), on loopback: the platform's "
        "six processes, PostgreSQL, RabbitMQ and the load generator. locust (one process, "
        "FastHttpUser) spends CPU that the services would otherwise get, so both the submit "
        "figures and the bare ceiling are lower than on a separate load machine; the ratio "
        "between them is the figure to trust. Measured: locust itself used "
        f"{busiest_submit.locust_cpu_share:.0%} of one core at the fastest submit level and "
        f"{busiest_ceiling.locust_cpu_share:.0%} at the fastest ceiling level "
        "(its CPU time over its run, start-up and sign-ins included).",
        f"Each level runs {seconds:.0f} s of closed-loop load (each user keeps one request in "
        "flight, no think time). Each user signs in once (POST /api/v1/auth/token, a real "
        "token); the window opens when all have signed in, so sign-ins are not counted. "
        "Submit latency is locust's, which rounds to 2 significant figures above 100 ms.",
        "Submissions are complete birth-certificate applications built from the catalogue, "
        "validated by the gateway and the applications service and stored as events; the bare "
        "ceiling (bench/ceiling.py) receives the same body and makes one RPC call to a method "
        "that does nothing, with the same nameko config (JSON serializer, max_workers).",
        f"Projection latency: during each level a sampler in the bench process submits one "
        f"more file every {SAMPLE_INTERVAL_SECONDS * 1000:.0f} ms (about "
        f"{1 / SAMPLE_INTERVAL_SECONDS:.0f} req/s on top of locust's) and polls the workflow "
        f"database every {POLL_INTERVAL_SECONDS * 1000:.0f} ms until the file's row appears; "
        "the figure is from the 201 response to the first poll that sees the row (an upper "
        "bound by at most one poll interval). Samples per level: "
        + ", ".join(str(len(sample.latencies_ms)) for sample in samples)
        + (" (in quick mode p99 is close to the maximum)." if settings.quick else "."),
        f"The {PACED_FRACTION:.0%} row paces {paced.load.users} users with locust's "
        f"constant_throughput to {paced_rate:.0f} req/s in all ({PACED_FRACTION:.0%} of the "
        "highest rate measured); its p99 is the one held against the "
        f"{P99_TARGET_MS:.0f} ms target.",
        *notes,
    ]
    if unseen or sampler_failures:
        notes.append(
            f"Projection sampler: {sampler_failures} submissions failed and {unseen} files were "
            f"not seen in the projection within {PROJECTION_DEADLINE_SECONDS:.0f} s."
        )
    if cpu_warned:
        notes.append("locust warned that its own CPU use passed 90% during at least one level.")
    if settings.quick:
        notes.append("Quick mode: short levels and few users; a smoke run, not a measurement.")

    return Section(
        key="e2e",
        title="End to end: submissions through the gateway, and the bare framework ceiling",
        columns=[
            "users",
            "submit req/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "failures",
            "projection p50 ms",
            "projection p95 ms",
            "projection p99 ms",
            "ceiling req/s",
            "ceiling p99 ms",
        ],
        rows=rows,
        ratios=ratios,
        series=series,
        notes=notes,
    )
