"""The soak's judgement (bench/soak.py), as pure functions of what it sampled:
is each process's memory flat, is each consumer's lag bounded and drained,
was there any error. No I/O here, so tests/unit/test_soak.py checks every
rule in milliseconds.

The rules, with their tolerances stated once:

- memory is flat when the median RSS over the last third of the load
  (after a warm-up) exceeds the median over the first third by at most
  MEMORY_TOLERANCE_BYTES or MEMORY_TOLERANCE_FRACTION, whichever is larger:
  medians, so one garbage-collection spike does not decide;
- lag (relay position - consumer position, per queue) is bounded when it
  never passed the bound (LAG_BOUND_SECONDS of events at the rate measured,
  at least LAG_BOUND_FLOOR positions), and drained when it was back to zero,
  with the queues empty, within DRAIN_DEADLINE_SECONDS of the load stopping;
- no error: no failed request (a 429 with Retry-After is the one documented
  refusal, counted apart), no message in a dead-letter queue, no 5xx the
  gateway answered anyone (the SMS provider's receipts included), and no
  ERROR-level line (nor a traceback) in any process's log.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

MIB = 1024 * 1024
MEMORY_TOLERANCE_BYTES = 10 * MIB
MEMORY_TOLERANCE_FRACTION = 0.05
WARM_UP_FRACTION = 0.2  # of the load's duration, at least WARM_UP_MIN_SECONDS
WARM_UP_MIN_SECONDS = 30.0
LAG_BOUND_SECONDS = 10.0
LAG_BOUND_FLOOR = 100
DRAIN_DEADLINE_SECONDS = 60.0
ERROR_LEVELS = frozenset({"error", "critical", "exception", "fatal"})


# -- memory ------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryGrowth:
    start_bytes: int  # median RSS of the first third after the warm-up
    end_bytes: int  # median RSS of the last third
    slope_bytes_per_minute: float  # least squares over the judged samples
    samples: int
    tolerance_bytes: int

    @property
    def growth_bytes(self) -> int:
        return self.end_bytes - self.start_bytes

    @property
    def growth_fraction(self) -> float:
        return self.growth_bytes / self.start_bytes if self.start_bytes else 0.0

    @property
    def flat(self) -> bool:
        return self.growth_bytes <= self.tolerance_bytes


def warm_up_seconds(load_seconds: float) -> float:
    return max(WARM_UP_MIN_SECONDS, WARM_UP_FRACTION * load_seconds)


def memory_growth(
    samples: Sequence[tuple[float, int]],
    warm_up: float,
    tolerance_bytes: int = MEMORY_TOLERANCE_BYTES,
    tolerance_fraction: float = MEMORY_TOLERANCE_FRACTION,
) -> MemoryGrowth | None:
    """Growth of one process's RSS over `samples` ((seconds since the load
    began, bytes), in time order), ignoring the first `warm_up` seconds;
    None with fewer than three samples after the warm-up (nothing to judge)."""
    judged = [(t, rss) for t, rss in samples if t >= warm_up]
    if len(judged) < 3:
        return None
    first_t, last_t = judged[0][0], judged[-1][0]
    third = (last_t - first_t) / 3
    first = [rss for t, rss in judged if t <= first_t + third] or [judged[0][1]]
    last = [rss for t, rss in judged if t >= last_t - third] or [judged[-1][1]]
    start = int(statistics.median(first))
    return MemoryGrowth(
        start_bytes=start,
        end_bytes=int(statistics.median(last)),
        slope_bytes_per_minute=_slope(judged) * 60,
        samples=len(judged),
        tolerance_bytes=max(tolerance_bytes, int(tolerance_fraction * start)),
    )


def per_second(points: Sequence[tuple[float, int]]) -> float:
    """How fast a count rises (least squares): positions published or
    consumed a second, from (seconds, position) samples."""
    return _slope(points) if len(points) >= 2 else 0.0


def _slope(points: Sequence[tuple[float, int]]) -> float:
    mean_t = statistics.fmean(t for t, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (y - mean_y) for t, y in points) / spread


# -- lag ---------------------------------------------------------------------------------


def lags(relay_position: int, consumer_positions: Mapping[str, int]) -> dict[str, int]:
    """Positions each consumer is behind the relay. A consumer sampled a
    moment before the relay can look ahead of it: never below zero."""
    return {
        queue: max(0, relay_position - position) for queue, position in consumer_positions.items()
    }


def lag_bound(events_per_second: float) -> int:
    """The most positions a consumer may be behind while keeping up: the
    events of LAG_BOUND_SECONDS at the rate measured, at least LAG_BOUND_FLOOR."""
    return max(LAG_BOUND_FLOOR, round(events_per_second * LAG_BOUND_SECONDS))


@dataclass(frozen=True)
class LagJudgement:
    max_lag: dict[str, int]
    bound: int
    drained_after_seconds: float | None  # None: not drained at all while watched
    deadline_seconds: float = DRAIN_DEADLINE_SECONDS

    @property
    def bounded(self) -> bool:
        return all(lag <= self.bound for lag in self.max_lag.values())

    @property
    def drained(self) -> bool:
        return (
            self.drained_after_seconds is not None
            and self.drained_after_seconds <= self.deadline_seconds
        )


def drained(
    relay_position: int,
    stored_position: int,
    consumer_positions: Mapping[str, int],
    queue_depths: Mapping[str, int],
) -> bool:
    """Everything stored was published, every consumer is at the relay, and
    no queue (main or retry) holds a message. Dead-letter queues are judged
    as errors, not here."""
    return (
        relay_position >= stored_position
        and not any(lags(relay_position, consumer_positions).values())
        and not any(depth for queue, depth in queue_depths.items() if not is_dead_queue(queue))
    )


def is_dead_queue(queue: str) -> bool:
    return queue.endswith(".dead")


# -- errors ------------------------------------------------------------------------------


def error_lines(lines: Iterable[str]) -> list[str]:
    """The lines of a process's log that report an error: a JSON line at
    ERROR level or above, or a line that is not JSON and shows a traceback
    or an error level (what a crash writes past the logger)."""
    found = []
    for line in lines:
        text = line.strip()
        if not text:
            continue
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if isinstance(record, dict):
            if str(record.get("level", "")).lower() in ERROR_LEVELS:
                found.append(text)
        elif text.startswith("Traceback") or text.split(":", 1)[0].upper() in {
            "ERROR",
            "CRITICAL",
        }:
            found.append(text)
    return found


@dataclass(frozen=True)
class RequestTally:
    """One kind of request the soak made (submit, inbox, verify, approve)."""

    kind: str
    requests: int
    failures: dict[str, int]  # what went wrong ("HTTP 500", "ConnectionError") -> count
    throttled: int = 0  # 429 with Retry-After: documented, not a failure
    p50_ms: float | None = None
    p99_ms: float | None = None

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


@dataclass(frozen=True)
class ErrorJudgement:
    request_failures: int
    dead_letters: dict[str, int]  # every *.dead queue -> messages in it
    gateway_5xx: int
    log_errors: dict[str, list[str]]  # process -> its error lines

    @property
    def clean(self) -> bool:
        return (
            self.request_failures == 0
            and not any(self.dead_letters.values())
            and self.gateway_5xx == 0
            and not any(self.log_errors.values())
        )


# -- the load ----------------------------------------------------------------------------

# The share of the offered submission rate the citizens must achieve: less
# means the platform (or the machine) did not keep up, and a soak at a lower
# rate than it claims proves nothing about the rate it claims.
ACHIEVED_SHARE = 0.9


@dataclass(frozen=True)
class LoadJudgement:
    """Whether the soak carried the load it was meant to."""

    offered_submits_per_second: float
    achieved_submits_per_second: float
    requests: int  # every request the load made, of every kind
    events: int  # events the relay published while the load ran

    def failures(self) -> list[str]:
        found = []
        if self.requests <= 0:
            found.append("the load made no request")
        if self.events <= 0:
            found.append("no event was published while the load ran")
        wanted = ACHIEVED_SHARE * self.offered_submits_per_second
        if self.achieved_submits_per_second < wanted:
            found.append(
                f"the citizens achieved {self.achieved_submits_per_second:.2f} submissions/s"
                f" of the {self.offered_submits_per_second:.2f} offered (less than"
                f" {ACHIEVED_SHARE:.0%}): the platform (or the shared machine) did not keep up"
            )
        return found


# -- the verdict -------------------------------------------------------------------------


@dataclass
class Verdict:
    memory: dict[str, MemoryGrowth | None]
    lag: LagJudgement
    errors: ErrorJudgement
    load: LoadJudgement
    notes: list[str] = field(default_factory=list)

    def failures(self) -> list[str]:
        """Each broken rule, in words; empty when the soak passed."""
        found = self.load.failures()
        for process, growth in self.memory.items():
            if growth is None:
                found.append(f"memory of {process}: too few samples after the warm-up to judge")
            elif not growth.flat:
                found.append(
                    f"memory of {process} grew {_mib(growth.growth_bytes)} "
                    f"({growth.growth_fraction:+.1%}), more than {_mib(growth.tolerance_bytes)}"
                )
        for queue, lag in self.lag.max_lag.items():
            if lag > self.lag.bound:
                found.append(f"lag of {queue} reached {lag} positions (bound {self.lag.bound})")
        if not self.lag.drained:
            found.append(
                f"the consumers had not drained {self.lag.deadline_seconds:.0f} s "
                "after the load stopped"
            )
        errors = self.errors
        if errors.request_failures:
            found.append(f"{errors.request_failures} requests failed")
        for queue, count in errors.dead_letters.items():
            if count:
                found.append(f"{count} messages in {queue}")
        if errors.gateway_5xx:
            found.append(f"the gateway answered {errors.gateway_5xx} times with a 5xx")
        for process, lines in errors.log_errors.items():
            if lines:
                found.append(f"{len(lines)} error lines in the log of {process}")
        return found

    @property
    def passed(self) -> bool:
        return not self.failures()


def _mib(value: float) -> str:
    return f"{value / MIB:+.1f} MiB" if value < 0 else f"{value / MIB:.1f} MiB"


def process_table(verdict: Verdict, lag_by_process: Mapping[str, Sequence[str]]) -> str:
    """One markdown row per process: RSS at the start and the end of the
    judged window, growth, slope, the largest lag of the queues it consumes."""
    rows = [
        "| process | RSS start | RSS end | growth | slope | max lag (queue) | memory |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for process, growth in verdict.memory.items():
        queues = lag_by_process.get(process, ())
        lag = ", ".join(f"{verdict.lag.max_lag.get(q, 0)} ({q})" for q in queues) or "-"
        if growth is None:
            rows.append(f"| {process} | - | - | - | - | {lag} | not judged |")
            continue
        rows.append(
            f"| {process} | {growth.start_bytes / MIB:.1f} MiB | {growth.end_bytes / MIB:.1f} MiB"
            f" | {growth.growth_bytes / MIB:+.1f} MiB ({growth.growth_fraction:+.1%})"
            f" | {growth.slope_bytes_per_minute / MIB:+.2f} MiB/min | {lag}"
            f" | {'flat' if growth.flat else '**growing**'} |"
        )
    return "\n".join(rows)
