"""The soak's rules (bench/soak_verdict.py) on made-up samples: flat memory
passes and growing memory fails, a bounded lag that drains passes and one
that runs away fails, and any error fails. The soak itself is `make soak`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bench import soak_verdict as rules
from bench.soak_load import RampLevel
from bench.soak_verdict import MIB

BASE = 120 * MIB


def _series(rss_at, seconds: int = 300, every: int = 5) -> list[tuple[float, int]]:
    return [(float(t), int(rss_at(t))) for t in range(0, seconds + 1, every)]


def _verdict(**changes) -> rules.Verdict:
    fields = {
        "memory": {"gateway": rules.memory_growth(_series(lambda t: BASE), warm_up=60)},
        "lag": rules.LagJudgement({"workflow.events": 12}, bound=100, drained_after_seconds=2.0),
        "errors": rules.ErrorJudgement(
            request_failures=0,
            dead_letters={"workflow.events.dead": 0},
            gateway_5xx=0,
            log_errors={"gateway": []},
        ),
        "load": rules.LoadJudgement(
            offered_submits_per_second=4.0,
            achieved_submits_per_second=3.9,
            requests=3_600,
            events=4_800,
        ),
    }
    return rules.Verdict(**{**fields, **changes})


# -- memory ---------------------------------------------------------------------------------


def test_flat_memory_with_noise_is_flat():
    # +-3 MiB of garbage-collection saw-tooth around a steady level.
    growth = rules.memory_growth(
        _series(lambda t: BASE + (3 * MIB if (t // 5) % 2 else -3 * MIB)), warm_up=60
    )
    assert growth is not None and growth.flat
    assert abs(growth.growth_bytes) <= 3 * MIB


def test_memory_growing_steadily_is_not_flat():
    # 10 MiB a minute: a leak of a few KiB per request at this rate.
    growth = rules.memory_growth(_series(lambda t: BASE + t / 60 * 10 * MIB), warm_up=60)
    assert growth is not None and not growth.flat
    assert growth.slope_bytes_per_minute == pytest.approx(10 * MIB, rel=0.01)
    assert growth.growth_bytes > growth.tolerance_bytes


def test_growth_during_the_warm_up_is_not_held_against_a_process():
    # Caches and pools fill in the first minute, then the level holds.
    growth = rules.memory_growth(
        _series(lambda t: BASE + min(t, 60) / 60 * 40 * MIB), warm_up=rules.warm_up_seconds(300)
    )
    assert growth is not None and growth.flat


def test_one_spike_does_not_decide():
    growth = rules.memory_growth(
        _series(lambda t: BASE + (200 * MIB if t == 290 else 0)), warm_up=60
    )
    assert growth is not None and growth.flat


def test_tolerance_is_the_larger_of_bytes_and_fraction():
    small = rules.memory_growth(_series(lambda t: 40 * MIB), warm_up=0)
    large = rules.memory_growth(_series(lambda t: 1000 * MIB), warm_up=0)
    assert small.tolerance_bytes == rules.MEMORY_TOLERANCE_BYTES
    assert large.tolerance_bytes == int(rules.MEMORY_TOLERANCE_FRACTION * 1000 * MIB)


def test_too_few_samples_after_the_warm_up_are_not_judged_and_fail():
    assert rules.memory_growth([(0.0, BASE), (10.0, BASE), (40.0, BASE)], warm_up=30) is None
    verdict = _verdict(memory={"relay": None})
    assert not verdict.passed
    assert "too few samples" in verdict.failures()[0]


def test_warm_up_is_a_fifth_of_the_load_but_at_least_thirty_seconds():
    assert rules.warm_up_seconds(120) == 30
    assert rules.warm_up_seconds(600) == 120


# -- lag -------------------------------------------------------------------------------------


def test_lag_is_relay_minus_consumer_never_negative():
    assert rules.lags(100, {"workflow.events": 90, "notifications.events": 101}) == {
        "workflow.events": 10,
        "notifications.events": 0,
    }


def test_lag_bound_scales_with_the_event_rate_above_a_floor():
    assert rules.lag_bound(0.5) == rules.LAG_BOUND_FLOOR
    assert rules.lag_bound(50) == 50 * rules.LAG_BOUND_SECONDS


def test_bounded_lag_that_drains_passes():
    assert _verdict().passed


def test_lag_past_the_bound_fails():
    verdict = _verdict(
        lag=rules.LagJudgement({"workflow.events": 5000}, bound=100, drained_after_seconds=5.0)
    )
    assert not verdict.passed
    assert verdict.failures() == ["lag of workflow.events reached 5000 positions (bound 100)"]


def test_lag_that_never_drains_fails():
    verdict = _verdict(
        lag=rules.LagJudgement({"workflow.events": 40}, bound=100, drained_after_seconds=None)
    )
    assert not verdict.lag.drained
    assert not verdict.passed


def test_drained_needs_the_relay_caught_up_consumers_at_it_and_queues_empty():
    consumers = {"workflow.events": 50, "notifications.events": 50}
    empty = {"workflow.events": 0, "workflow.events.retry.200ms": 0}
    assert rules.drained(50, 50, consumers, empty)
    assert not rules.drained(49, 50, consumers, empty)  # stored, not yet published
    assert not rules.drained(50, 50, {**consumers, "workflow.events": 49}, empty)
    assert not rules.drained(50, 50, consumers, {**empty, "workflow.events.retry.200ms": 1})
    # Dead letters are an error of their own, not a backlog.
    assert rules.drained(50, 50, consumers, {**empty, "workflow.events.dead": 3})


# -- errors -----------------------------------------------------------------------------------


def test_error_lines_are_json_errors_and_tracebacks():
    lines = [
        json.dumps({"level": "info", "message": "file submitted"}),
        json.dumps({"level": "warning", "message": "handler failed; message moved"}),
        json.dumps({"level": "error", "message": "could not send"}),
        json.dumps({"level": "critical", "message": "gave up"}),
        "Traceback (most recent call last):",
        "ERROR: something broke",
        "a plain line that says an error occurred, at no level",
        "",
    ]
    assert rules.error_lines(lines) == [lines[2], lines[3], lines[4], lines[5]]


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ({"request_failures": 3}, "3 requests failed"),
        ({"dead_letters": {"notifications.events.dead": 2}}, "2 messages in notifications"),
        ({"gateway_5xx": 1}, "the gateway answered 1 times with a 5xx"),
        ({"log_errors": {"workflow": ['{"level": "error"}']}}, "1 error lines in the log"),
    ],
)
def test_any_error_fails_the_soak(errors, expected):
    clean = {
        "request_failures": 0,
        "dead_letters": {"notifications.events.dead": 0},
        "gateway_5xx": 0,
        "log_errors": {"workflow": []},
    }
    verdict = _verdict(errors=rules.ErrorJudgement(**{**clean, **errors}))
    assert not verdict.errors.clean
    assert not verdict.passed
    assert any(expected in failure for failure in verdict.failures()), verdict.failures()


def test_throttled_requests_are_counted_apart_from_failures():
    tally = rules.RequestTally("submit", requests=10, failures={}, throttled=2)
    assert tally.failed == 0


def test_process_table_has_a_row_per_process_with_its_queues_lag():
    verdict = _verdict(
        memory={
            "gateway": rules.memory_growth(_series(lambda t: BASE), warm_up=60),
            "workflow": rules.memory_growth(_series(lambda t: BASE + t * MIB), warm_up=60),
        }
    )
    table = rules.process_table(verdict, {"workflow": ("workflow.events",)}).splitlines()
    assert len(table) == 4
    assert table[2].startswith("| gateway | 120.0 MiB | 120.0 MiB | +0.0 MiB")
    assert "12 (workflow.events)" in table[3] and "**growing**" in table[3]


def test_per_second_is_the_rate_a_position_rises():
    points = [(float(t), 1000 + 37 * t) for t in range(0, 60, 5)]
    assert rules.per_second(points) == pytest.approx(37)
    assert rules.per_second(points[:1]) == 0.0


def test_lag_drained_only_after_the_deadline_fails():
    late = rules.LagJudgement({"notifications.events": 50}, bound=100, drained_after_seconds=95)
    assert late.bounded and not late.drained
    assert not _verdict(lag=late).passed


def test_a_ramp_level_counts_until_its_work_is_finished():
    # Accepted at 100/s for 8 s, finished by the consumers 8 s later: 50/s.
    level = RampLevel(users=8, seconds=8.0, submitted=800, failures=0, p99_ms=120.0)
    assert level.rate == 100.0
    assert replace(level, drain_seconds=8.0).rate == 50.0


# -- the load --------------------------------------------------------------------------------


def test_a_soak_that_carried_its_load_passes():
    assert _verdict().passed


@pytest.mark.parametrize(
    ("load", "expected"),
    [
        ({"achieved_submits_per_second": 3.5}, "achieved 3.50 submissions/s of the 4.00 offered"),
        ({"requests": 0}, "the load made no request"),
        ({"events": 0}, "no event was published while the load ran"),
    ],
    ids=["short-of-the-offered-rate", "no-requests", "no-events"],
)
def test_a_soak_that_did_not_carry_its_load_fails(load, expected):
    offered = rules.LoadJudgement(
        offered_submits_per_second=4.0, achieved_submits_per_second=3.9, requests=3_600, events=1
    )
    verdict = _verdict(load=replace(offered, **load))
    assert not verdict.passed
    assert any(expected in failure for failure in verdict.failures()), verdict.failures()


def test_nine_tenths_of_the_offered_rate_is_enough():
    load = rules.LoadJudgement(
        offered_submits_per_second=4.0, achieved_submits_per_second=3.6, requests=1, events=1
    )
    assert load.failures() == []
