"""The platform on a PostgreSQL and a RabbitMQ of its own, under a short
steady stream of submissions and decisions, takes each fault once: RabbitMQ
restarted, the applications service (with its relay) and the workflow
service killed with SIGKILL, PostgreSQL restarted. Nothing accepted is lost
or stored twice, nothing refused is half-written, every event is projected
once (as a replay from zero would), no SMS goes out twice, every refusal
is a 503 with Retry-After, no process exits on its own (though the RabbitMQ
restart catches RPC replies in flight) and nothing is dead-lettered. The
full suite (a longer stream, every fault, in
its own process) is `make faults`: tests/faults/full_suite.py."""

import pytest

from tests.faults import scenario

RABBITMQ = "RabbitMQ restart"
KILL = "kill -9 applications+relay, workflow"
POSTGRES = "PostgreSQL restart"
FAULTS_INJECTED = [RABBITMQ, KILL, POSTGRES]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    with scenario.fault_bed(tmp_path_factory.mktemp("faults")) as bed:
        outcome = scenario.run(bed, FAULTS_INJECTED, steady_seconds=3.0)
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
