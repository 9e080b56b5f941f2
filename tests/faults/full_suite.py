"""The full fault suite: `make faults` (python -m pytest tests/faults/full_suite.py).

A longer stream of submissions and decisions, and every fault, each twice:
RabbitMQ restarted, the applications service (with its relay) and the
workflow service killed with SIGKILL, PostgreSQL restarted cleanly and
stopped as by a crash (immediate: recovery at start). The same verdicts as
tests/integration/test_faults_quick.py, which `make test` runs.

The file's name does not start with test_, so `make test` (pytest's default
collection under testpaths = ["tests"]) never picks it up; pytest collects a
file named on its command line whatever its name.
"""

import pytest

from tests.faults import scenario

RABBITMQ = "RabbitMQ restart"
KILL = "kill -9 applications+relay, workflow"
POSTGRES = "PostgreSQL restart"
POSTGRES_CRASH = "PostgreSQL crash (immediate stop)"
FAULTS_INJECTED = [RABBITMQ, KILL, POSTGRES, POSTGRES_CRASH]
EVERY_FAULT_TWICE = FAULTS_INJECTED * 2

# Longer than pyproject's 300 s per test: the stream alone takes minutes.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    with scenario.fault_bed(tmp_path_factory.mktemp("faults"), citizens=3) as bed:
        outcome = scenario.run(bed, EVERY_FAULT_TWICE, steady_seconds=6.0)
    print("\n" + outcome.table())
    return outcome


def test_nothing_accepted_is_lost_duplicated_or_half_written(outcome):
    scenario.assert_no_loss_or_duplicate(outcome)


@pytest.mark.parametrize("fault", FAULTS_INJECTED)
def test_requests_refused_in_a_fault_get_503_with_retry_after(outcome, fault):
    scenario.assert_refusals_were_503_with_retry_after(outcome, fault)


@pytest.mark.parametrize("fault", FAULTS_INJECTED)
def test_each_fault_was_felt_by_the_clients(outcome, fault):
    scenario.assert_each_fault_was_felt(outcome, fault)


def test_no_service_process_exits_on_its_own(outcome):
    scenario.assert_no_process_exited_on_its_own(outcome)


def test_no_message_is_dead_lettered(outcome):
    scenario.assert_nothing_dead_lettered(outcome)
