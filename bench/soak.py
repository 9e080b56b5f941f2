"""`make soak`: the whole platform at half its maximum rate for several
minutes; memory must stay flat, consumer lag bounded, nothing may fail, and
the load must be carried (at least 90% of the offered submissions, requests
made and events published).

    python -m bench.soak [--minutes 5] [--rate COMMANDS_PER_SECOND]

1. Starts the platform fresh (tests.support.platform.running_platform: new
   databases, a new vhost, consumers retrying after production's delays),
   with the dev inbox in this process as its SMS provider and mail server;
   signs in citizens by phone (their codes read off the fake phone) and the
   deciding officials.
2. Unless --rate is given, finds the maximum rate: a short closed-loop ramp
   (as bench/e2e.py's levels) by a citizen with a phone, each level counted
   until every consumer has finished its work (projected, told, the SMS
   delivered): the gateway accepts bursts faster than that, and a rate the
   consumers cannot hold is no maximum. Its files go to another local body,
   so that the soak's officials never see them. The soak runs at half of it.
3. Runs the mix for --minutes: citizens submit a third of the rate (paced)
   and officials verify and approve every file from their inboxes (the
   other two thirds: each file takes two decisions). Every step sends the
   citizen an SMS through the fake provider, whose delivery receipts come
   back to the gateway.
4. Every SAMPLE_SECONDS: each process's RSS, the relay's and consumers'
   positions from their /metrics, and every queue's depth (passive
   declares: the management plugin need not be there), dead letters included.
5. Stops the load, waits for the consumers to drain, reads every log, and
   judges (bench/soak_verdict.py). Prints the tables and the verdict, writes
   bench/results/soak.md (and soak.json, the samples) and exits 1 on failure.

The processes' logs stay in var/soak/ until the next soak.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from kombu import Connection

from bench import soak_verdict as rules
from bench.core import Progress
from bench.e2e import _warm_up
from bench.report import machine
from bench.soak_load import (
    DECIDERS,
    Mix,
    Tally,
    ramp,
)
from ksmart_common.config import RetryPolicy
from ksmart_common.messaging import OTP_QUEUE
from ksmart_ops.admin import consumer_topologies
from tests.support import citizen, metrics
from tests.support.inbox import phone_number, served_inbox, sign_in_by_phone
from tests.support.platform import Platform, running_platform

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / "var" / "soak"
RESULTS = ROOT / "bench" / "results"

SAMPLE_SECONDS = 5.0
# The delays a production deployment retries a failing message after.
RETRY_DELAYS_MS = RetryPolicy().delays_ms
RAMP_LEVELS = (2, 4, 8, 16)
RAMP_SECONDS = 8.0
RAMP_WARM_UP_SUBMISSIONS = 40
# The ramp's files go to another body than the soak's officials (Kochi).
RAMP_LOCAL_BODY = "KL-TVM-TVC"
SETTLE_SECONDS = 180.0  # for a ramp level's work to drain
PHONE_CITIZENS = 4
DRAIN_WAIT_SECONDS = 3 * rules.DRAIN_DEADLINE_SECONDS
SUBMIT_SHARE = 1 / 3  # of the commands; decisions are the rest (two per file)
# Which queues each consuming process owns, for its row of the table.
QUEUES_OF = {"workflow": ("workflow.events",), "notifications": ("notifications.events",)}


# -- sampling ------------------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float  # since the load began (negative before, past its length after)
    rss: dict[str, int]  # process -> bytes (0: the process is gone)
    relay_position: int
    stored_position: int
    consumer_positions: dict[str, int]
    queue_depths: dict[str, int]
    gateway_5xx: int
    counters: dict[str, float] = field(default_factory=dict)

    @property
    def lags(self) -> dict[str, int]:
        return rules.lags(self.relay_position, self.consumer_positions)

    @property
    def drained(self) -> bool:
        return rules.drained(
            self.relay_position, self.stored_position, self.consumer_positions, self.queue_depths
        )


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    rss = next(
        (int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")),
        0,
    )
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        rss += sum(rss_bytes(int(child)) for child in children)
    return rss


class Probe:
    """Reads what a sample holds from the running platform."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.pids = {
            path.stem: int(path.read_text()) for path in sorted(platform.run_dir.glob("*.pid"))
        }
        self.queues = [
            queue.name
            for topology in consumer_topologies(RETRY_DELAYS_MS)
            for queue in (topology.main_queue(), *topology.side_queues())
        ] + [OTP_QUEUE]
        self.events = platform.engine("applications")
        self.http = requests.Session()
        self.broker = Connection(platform.amqp_uri)

    def close(self) -> None:
        self.broker.release()
        self.http.close()
        self.events.dispose()

    def metrics(self, process: str) -> dict:
        reply = self.http.get(f"{self.platform.ops_url(process)}/metrics", timeout=5)
        reply.raise_for_status()
        return metrics.parse(reply.text)

    def queue_depths(self) -> dict[str, int]:
        depths = {}
        try:
            channel = self.broker.default_channel
            for queue in self.queues:
                declared = channel.queue_declare(queue=queue, passive=True)
                depths[queue] = declared.message_count
        except Exception:
            # A fresh connection for the next sample, whatever broke this one.
            self.broker.release()
            self.broker = Connection(self.platform.amqp_uri)
            raise
        return depths

    def sample(self, seconds: float) -> Sample:
        consumers: dict[str, int] = {}
        counters: dict[str, float] = {}
        for process in ("workflow", "notifications"):
            for (name, labels), value in self.metrics(process).items():
                label = dict(labels)
                if name == "ksmart_consumer_position":
                    consumers[label["queue"]] = int(value)
                elif name == "ksmart_messages_consumed_total":
                    key = f"consumed {label['queue']} {label['outcome']}"
                    counters[key] = value
                elif name == "ksmart_notifications_total":
                    counters[f"notifications {label['channel']} {label['outcome']}"] = value
        for queue in QUEUES_OF.values():
            for name in queue:
                consumers.setdefault(name, 0)  # nothing handled yet
        relay = self.metrics("relay").get(("ksmart_relay_published_position", ()), 0)
        gateway_5xx = sum(
            value
            for (name, labels), value in self.metrics("gateway").items()
            if name == "ksmart_http_requests_total" and dict(labels)["status"].startswith("5")
        )
        with self.events.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT coalesce(max(global_position), 0) FROM events")
            ).scalar_one()
        return Sample(
            seconds=round(seconds, 1),
            rss={name: rss_bytes(pid) for name, pid in self.pids.items()},
            relay_position=int(relay),
            stored_position=int(stored),
            consumer_positions=consumers,
            queue_depths=self.queue_depths(),
            gateway_5xx=int(gateway_5xx),
            counters=counters,
        )


class Sampler:
    """Samples every SAMPLE_SECONDS from a thread of its own."""

    def __init__(self, probe: Probe, zero: float) -> None:
        self.probe = probe
        self.zero = zero  # the monotonic time the load began
        self.samples: list[Sample] = []
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        self.thread.join(30)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self.stopping.wait(max(0.0, next_at - time.monotonic())):
            next_at += SAMPLE_SECONDS
            try:
                self.samples.append(self.probe.sample(time.monotonic() - self.zero))
            except Exception as error:  # noqa: BLE001 - noted; sampling goes on
                self.failures.append(f"{type(error).__name__}: {error}")


def wait_until_drained(
    probe: Probe, zero: float, deadline_seconds: float, samples: list[Sample]
) -> float | None:
    """Sample each second until everything is consumed; seconds it took, or None."""
    began = time.monotonic()
    while time.monotonic() - began <= deadline_seconds:
        sample = probe.sample(time.monotonic() - zero)
        samples.append(sample)
        if sample.drained:
            return time.monotonic() - began
        time.sleep(1.0)
    return None


def log_offsets(run_dir: Path) -> dict[str, int]:
    return {path.stem: path.stat().st_size for path in run_dir.glob("*.log")}


def errors_in_logs(run_dir: Path, since: dict[str, int]) -> dict[str, list[str]]:
    found = {}
    for path in sorted(run_dir.glob("*.log")):
        with path.open("rb") as log:
            log.seek(since.get(path.stem, 0))
            lines = log.read().decode(errors="replace").splitlines()
        found[path.stem] = rules.error_lines(lines)
    return found


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    settings: dict[str, Any]
    ramp: list[dict[str, Any]]
    tallies: list[rules.RequestTally]
    samples: list[Sample]
    verdict: rules.Verdict
    load_seconds: float
    sampler_failures: list[str]


def run(minutes: float, rate: float | None, progress: Callable[[str], None]) -> Outcome:
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    with served_inbox() as (inbox, inbox_environ):
        environ = {
            **inbox_environ,
            # Every token signed in before the load outlives it.
            "KSMART_ACCESS_TOKEN_TTL_SECONDS": str(int(minutes * 60) + 3600),
        }
        progress(f"soak: starting the platform (fresh databases and vhost; logs in {RUN_DIR})")
        # Consumers retry with production's delays, not the tests' short ones.
        with running_platform(
            RUN_DIR, environ=environ, retry_delays_ms=RETRY_DELAYS_MS
        ) as platform:
            return _soak(platform, inbox, minutes, rate, progress)


def _soak(platform: Platform, inbox, minutes: float, rate: float | None, progress) -> Outcome:
    probe = Probe(platform)
    try:
        ramp_levels = []
        max_rate = None
        if rate is None:
            # A citizen with a phone, as in the soak: each file also costs
            # its SMS and the provider's receipt.
            phone = phone_number()
            sign_in_by_phone(platform, inbox, phone)
            body = citizen.application(platform, user=phone)
            body["local_body"] = RAMP_LOCAL_BODY
            encoded = json.dumps(body).encode()
            progress(f"soak: warming up ({RAMP_WARM_UP_SUBMISSIONS} submissions)")
            _warm_up(platform, encoded, RAMP_WARM_UP_SUBMISSIONS, user=phone)

            def drain() -> float:
                took = wait_until_drained(probe, time.monotonic(), SETTLE_SECONDS, [])
                if took is None:
                    raise RuntimeError(f"the ramp's work did not drain in {SETTLE_SECONDS:.0f} s")
                return took

            drain()
            headers = {**platform.as_user(phone), "Content-Type": "application/json"}
            ramp_levels = ramp(
                f"{platform.base_url}/api/v1/files",
                headers,
                encoded,
                RAMP_LEVELS,
                RAMP_SECONDS,
                drain,
                progress,
            )
            max_rate = max(level.rate for level in ramp_levels)
            rate = max_rate / 2
            progress(f"soak: maximum {max_rate:.1f} submissions/s; the soak runs at {rate:.1f}")

        progress(f"soak: signing in {PHONE_CITIZENS} citizens by phone and the officials")
        tokens = {}
        for _ in range(PHONE_CITIZENS):
            phone = phone_number()
            tokens[phone] = sign_in_by_phone(platform, inbox, phone)
        bodies = {phone: citizen.application(platform, user=phone) for phone in tokens}
        for username, _ in DECIDERS.values():
            tokens[username] = platform.token(username)

        submit_rate = rate * SUBMIT_SHARE
        submitters = min(32, max(4, math.ceil(submit_rate)))
        load_seconds_planned = minutes * 60
        progress(
            f"soak: {minutes:g} min at {rate:.1f} commands/s: {submit_rate:.2f} submissions/s "
            f"from {submitters} threads, the officials deciding every file"
        )
        offsets = log_offsets(platform.run_dir)
        zero = time.monotonic()
        mix = Mix(platform.base_url, tokens, bodies, submit_rate, submitters)
        with Sampler(probe, zero) as sampler:
            mix.start()
            _report_while_running(mix.tally, sampler, zero, load_seconds_planned, progress)
            load_seconds = mix.stop()
        progress("soak: load stopped; waiting for the consumers to drain")
        samples = sampler.samples
        # Waits past the deadline (judged in the verdict) to tell how long it took.
        drained_after = wait_until_drained(probe, zero, DRAIN_WAIT_SECONDS, samples)
        final = samples[-1]
        during = [s for s in samples if 0 <= s.seconds <= load_seconds]
        warm_up = rules.warm_up_seconds(load_seconds)
        memory = {
            process: rules.memory_growth([(s.seconds, s.rss[process]) for s in during], warm_up)
            for process in probe.pids
        }
        events_per_second = (
            (during[-1].relay_position - during[0].relay_position)
            / max(1e-9, during[-1].seconds - during[0].seconds)
            if len(during) >= 2
            else 0.0
        )
        max_lag = {
            queue: max((s.lags.get(queue, 0) for s in samples if s.seconds >= 0), default=0)
            for queue in final.consumer_positions
        }
        tallies = mix.tally.tallies()
        exited = [process for process, rss in final.rss.items() if rss == 0]
        log_errors = errors_in_logs(platform.run_dir, offsets)
        for process in exited:
            log_errors.setdefault(process, []).append(f"{process} exited during the soak")
        dead_letters = {
            queue: depth
            for queue, depth in final.queue_depths.items()
            if rules.is_dead_queue(queue)
        }
        submitted = next((t.requests for t in tallies if t.kind == "submit"), 0)
        achieved = submitted / load_seconds if load_seconds else 0.0
        verdict = rules.Verdict(
            memory=memory,
            lag=rules.LagJudgement(max_lag, rules.lag_bound(events_per_second), drained_after),
            errors=rules.ErrorJudgement(
                request_failures=sum(t.failed for t in tallies),
                dead_letters=dead_letters,
                # Counted from the load's start: the ramp is not judged.
                gateway_5xx=final.gateway_5xx - samples[0].gateway_5xx,
                log_errors=log_errors,
            ),
            load=rules.LoadJudgement(
                offered_submits_per_second=submit_rate,
                achieved_submits_per_second=achieved,
                requests=sum(t.requests for t in tallies),
                events=during[-1].relay_position - during[0].relay_position if during else 0,
            ),
        )
        settings = {
            "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "minutes": minutes,
            "max_submit_rate": None if max_rate is None else round(max_rate, 1),
            "rate": round(rate, 2),
            "submit_rate": round(submit_rate, 2),
            "achieved_submit_rate": round(achieved, 2),
            "events_per_second": round(events_per_second, 1),
            "submitters": submitters,
            "phone_citizens": PHONE_CITIZENS,
            "sample_seconds": SAMPLE_SECONDS,
            "warm_up_seconds": warm_up,
            "sms_received": len(inbox.sms.messages()),
            "machine": machine(),
        }
        return Outcome(
            settings,
            [asdict(level) | {"rate": round(level.rate, 1)} for level in ramp_levels],
            tallies,
            samples,
            verdict,
            load_seconds,
            sampler.failures,
        )
    finally:
        probe.close()


def _report_while_running(
    tally: Tally, sampler: Sampler, zero: float, seconds: float, progress
) -> None:
    """Wait out the load, with a progress line each minute."""
    next_line = 60.0
    while (elapsed := time.monotonic() - zero) < seconds:
        time.sleep(min(1.0, seconds - elapsed))
        if elapsed >= next_line:
            next_line += 60.0
            last = sampler.samples[-1] if sampler.samples else None
            lag = max(last.lags.values(), default=0) if last else "?"
            rss = sum(last.rss.values()) / rules.MIB if last else 0
            progress(
                f"soak: {elapsed / 60:.0f} min: {tally.count('submit')} submitted, "
                f"{tally.count('verify')} verified, {tally.count('approve')} approved; "
                f"lag {lag}, RSS of all processes {rss:.0f} MiB"
            )


# -- the report ---------------------------------------------------------------------------------


def markdown(outcome: Outcome) -> str:
    settings, verdict = outcome.settings, outcome.verdict
    failures = verdict.failures()
    lines = [
        "# Soak",
        "",
        f"Run {settings['started_at']} on {_machine_text(settings['machine'])} "
        "(`make soak`, bench/soak.py).",
        "",
        f"**Verdict: {'PASSED' if not failures else 'FAILED'}**"
        + ("" if not failures else ": " + "; ".join(failures)),
        "",
        "## Load",
        "",
    ]
    if outcome.ramp:
        ramp_text = "; ".join(
            f"{r['users']} users {r['submitted'] / r['seconds']:.1f}/s accepted,"
            f" drained {r['drain_seconds']:.1f} s later, {r['rate']}/s finished"
            for r in outcome.ramp
        )
        lines.append(
            f"Maximum rate {settings['max_submit_rate']} submissions/s finished (closed-loop"
            f" ramp, each level counted until every consumer had finished its work: "
            f"{ramp_text}); the soak ran at half of it."
        )
    else:
        lines.append("The rate was given (SOAK_RATE); no ramp.")
    lines += [
        "",
        f"{outcome.load_seconds / 60:.1f} minutes at {settings['rate']} commands/s: citizens "
        f"submitting {settings['submit_rate']}/s (achieved {settings['achieved_submit_rate']}/s, "
        f"{settings['phone_citizens']} citizens signed in by phone, {settings['submitters']} "
        "threads), officials verifying and approving every file from their inboxes "
        f"(two per role); {settings['events_per_second']} events/s stored and published; "
        f"{settings['sms_received']} SMS received by the fake provider.",
        "",
        "| request | count | failed | 429 | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {t.kind} | {t.requests} | {t.failed} | {t.throttled} | {t.p50_ms} | {t.p99_ms} |"
            for t in outcome.tallies
        ),
        "",
        "## Memory and lag, per process",
        "",
        f"RSS, positions and queue depths sampled every {settings['sample_seconds']:.0f} s "
        "(and each second while draining). Memory is judged after a warm-up of "
        f"{settings['warm_up_seconds']:.0f} s: the median of the last third against the median "
        f"of the first third, flat within {rules.MEMORY_TOLERANCE_BYTES / rules.MIB:.0f} MiB or "
        f"{rules.MEMORY_TOLERANCE_FRACTION:.0%}, whichever is larger. Lag is the relay's "
        "published position minus the consumer's; bound "
        f"{verdict.lag.bound} positions ({rules.LAG_BOUND_SECONDS:.0f} s of events, at least "
        f"{rules.LAG_BOUND_FLOOR}).",
        "",
        rules.process_table(verdict, QUEUES_OF),
        "",
        _drain_text(verdict.lag),
        "",
        *_consumption_table(outcome),
        "",
        "## Queues",
        "",
        "| queue | max depth | at the end |",
        "|---|---:|---:|",
    ]
    final = outcome.samples[-1].queue_depths if outcome.samples else {}
    for queue in final:
        deepest = max(s.queue_depths.get(queue, 0) for s in outcome.samples)
        lines.append(f"| {queue} | {deepest} | {final[queue]} |")
    errors = verdict.errors
    lines += [
        "",
        "## Errors",
        "",
        f"- failed requests: {errors.request_failures}",
        f"- dead letters: {sum(errors.dead_letters.values())}",
        f"- gateway 5xx answers: {errors.gateway_5xx}",
        f"- error lines in the logs: {sum(len(v) for v in errors.log_errors.values())}",
    ]
    for tally in outcome.tallies:
        for what, count in tally.failures.items():
            lines.append(f"  - {tally.kind}: {what} x{count}")
    for process, found in errors.log_errors.items():
        for line in found[:5]:
            lines.append(f"  - {process}: `{line[:300]}`")
    counters = outcome.samples[-1].counters if outcome.samples else {}
    if counters:
        lines += ["", "Counters at the end (each process's /metrics):", ""]
        lines += [f"- {name}: {value:g}" for name, value in sorted(counters.items())]
    for note in verdict.notes + [f"sampling failed: {f}" for f in outcome.sampler_failures[:5]]:
        lines += ["", f"Note: {note}."]
    return "\n".join(lines) + "\n"


def _machine_text(facts: dict[str, Any]) -> str:
    return (
        f"{facts['cores']} cores, {facts['memory_gib']} GiB, PostgreSQL {facts['postgresql']}, "
        f"RabbitMQ {facts['rabbitmq']}"
    )


def _consumption_table(outcome: Outcome) -> list[str]:
    """Per consumed queue, after the warm-up: positions published and
    consumed a second, and the lag where the judged window begins and ends
    (a consumer slower than the relay shows a lag that keeps rising)."""
    warm_up = outcome.settings["warm_up_seconds"]
    judged = [s for s in outcome.samples if warm_up <= s.seconds <= outcome.load_seconds]
    if len(judged) < 2:
        return []
    published = rules.per_second([(s.seconds, s.relay_position) for s in judged])
    rows = [
        "| queue | published/s | consumed/s | lag after the warm-up | lag when the load stopped |",
        "|---|---:|---:|---:|---:|",
    ]
    for queue in judged[-1].consumer_positions:
        consumed = rules.per_second([(s.seconds, s.consumer_positions[queue]) for s in judged])
        rows.append(
            f"| {queue} | {published:.1f} | {consumed:.1f} | {judged[0].lags[queue]}"
            f" | {judged[-1].lags[queue]} |"
        )
    return rows


def _drain_text(lag: rules.LagJudgement) -> str:
    if lag.drained_after_seconds is None:
        return (
            f"Not drained {DRAIN_WAIT_SECONDS:.0f} s after the load stopped "
            f"(deadline {lag.deadline_seconds:.0f} s)."
        )
    return (
        f"Everything was consumed {lag.drained_after_seconds:.1f} s after the load stopped "
        f"(deadline {lag.deadline_seconds:.0f} s)."
    )


def _samples_json(outcome: Outcome) -> str:
    return json.dumps(
        {
            "settings": outcome.settings,
            "ramp": outcome.ramp,
            "samples": [asdict(sample) for sample in outcome.samples],
        },
        separators=(",", ":"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="how long the load runs")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="commands (submissions and decisions) a second; default: half the maximum measured",
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0 or (args.rate is not None and args.rate <= 0):
        parser.error("--minutes and --rate must be positive")
    progress = Progress()
    outcome = run(args.minutes, args.rate, progress)
    text = markdown(outcome)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.md").write_text(text)
    (RESULTS / "soak.json").write_text(_samples_json(outcome))
    print(text)
    progress(f"written: {(RESULTS / 'soak.md').relative_to(ROOT)}; logs in {RUN_DIR}")
    return 0 if outcome.verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
