"""Which failures are outages (ksmart_common.outages), and what a consumer
does with a failed message (ConsumerTopology.after_failure): an outage is
deferred to the shortest delay queue with its attempts unchanged, however
often; anything else spends the retry budget and ends dead-lettered."""

from __future__ import annotations

import amqp.exceptions
import kombu.exceptions
import psycopg2
import pytest
import sqlalchemy as sa
from nameko.amqp.publish import UndeliverableMessage

from ksmart_common.consumer import ConsumerTopology
from ksmart_common.errors import InvalidInput, NotFound, ServiceUnavailable, VersionConflict
from ksmart_common.outages import is_broker_outage, is_database_outage, is_outage


class DriverError(Exception):
    """A driver error carrying a SQLSTATE, as psycopg2's do."""

    def __init__(self, pgcode: str | None) -> None:
        super().__init__(f"SQLSTATE {pgcode}")
        self.pgcode = pgcode


def operational(pgcode: str | None) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, DriverError(pgcode))


def refused_by_the_database() -> sa.exc.OperationalError:
    """The real thing: a connection refused (nothing listens on port 1)."""
    engine = sa.create_engine(
        "postgresql+psycopg2://nobody@127.0.0.1:1/nothing", poolclass=sa.pool.NullPool
    )
    try:
        with pytest.raises(sa.exc.OperationalError) as raised:
            engine.connect()
    finally:
        engine.dispose()
    return raised.value


DATABASE_OUTAGES = {
    "connection refused": refused_by_the_database(),
    "no SQLSTATE (closed by the server)": operational(None),
    "admin shutdown": operational("57P01"),
    "cannot connect now (starting up)": operational("57P03"),
    "connection failure": operational("08006"),
    "too many connections": operational("53300"),
    "interface error": sa.exc.InterfaceError("SELECT 1", {}, DriverError(None)),
    "invalidated connection": sa.exc.DBAPIError(
        "SELECT 1", {}, DriverError("XX000"), connection_invalidated=True
    ),
    "driver's own operational error": psycopg2.OperationalError("server closed the connection"),
    "driver's own interface error": psycopg2.InterfaceError("connection already closed"),
}
BROKER_OUTAGES = {
    "kombu, retries spent": kombu.exceptions.OperationalError("[Errno 111] ECONNREFUSED"),
    "broker shut down": amqp.exceptions.ConnectionForced("CONNECTION_FORCED - shutdown"),
    "socket refused": ConnectionRefusedError(111, "Connection refused"),
    "socket reset": ConnectionResetError(104, "Connection reset by peer"),
}
NOT_OUTAGES = {
    "a bug": ValueError("must start with ApplicationSubmitted"),
    "a missing key": KeyError("message_id"),
    "a unique violation": sa.exc.IntegrityError("INSERT", {}, DriverError("23505")),
    "a serialisation failure": operational("40001"),
    "a statement timeout": operational("57014"),
    "a syntax error": sa.exc.ProgrammingError("SELEC 1", {}, DriverError("42601")),
    "a refused message (mandatory)": UndeliverableMessage(),
    "a domain refusal": InvalidInput("no such field"),
    "not found": NotFound("no such file"),
    "a conflict": VersionConflict("the file moved on"),
    "a channel error (bad declaration)": amqp.exceptions.PreconditionFailed("inequivalent arg"),
}


@pytest.mark.parametrize("error", DATABASE_OUTAGES.values(), ids=DATABASE_OUTAGES.keys())
def test_the_database_out_of_reach_is_an_outage(error):
    assert is_database_outage(error)
    assert not is_broker_outage(error)
    assert is_outage(error)


@pytest.mark.parametrize("error", BROKER_OUTAGES.values(), ids=BROKER_OUTAGES.keys())
def test_the_broker_out_of_reach_is_an_outage(error):
    assert is_broker_outage(error)
    assert not is_database_outage(error)
    assert is_outage(error)


def test_a_called_service_unavailable_is_an_outage():
    assert is_outage(ServiceUnavailable("a service did not answer in time"))


@pytest.mark.parametrize("error", NOT_OUTAGES.values(), ids=NOT_OUTAGES.keys())
def test_everything_else_is_not_an_outage(error):
    assert not is_outage(error)


def test_only_the_error_itself_is_classified_not_its_cause():
    try:
        try:
            raise operational(None)
        except sa.exc.OperationalError as cause:
            raise ValueError("a handler's own error") from cause
    except ValueError as error:
        assert not is_outage(error)


# -- what a consumer does with a failed message -----------------------------------------

TOPOLOGY = ConsumerTopology("workflow.events", ("#",), (1_000, 5_000, 30_000))


def test_a_failing_handler_spends_its_budget_then_is_dead_lettered():
    moves = [TOPOLOGY.after_failure(failed, ValueError("bug")) for failed in range(4)]
    assert [(m.outcome, m.failed_attempts, m.destination) for m in moves] == [
        ("retried", 1, "workflow.events.retry.1000ms"),
        ("retried", 2, "workflow.events.retry.5000ms"),
        ("retried", 3, "workflow.events.retry.30000ms"),
        ("dead_lettered", 4, "workflow.events.dead"),
    ]


@pytest.mark.parametrize(
    "error",
    [operational(None), kombu.exceptions.OperationalError("refused"), ServiceUnavailable("x")],
    ids=["database", "broker", "called service"],
)
def test_an_outage_defers_without_spending_an_attempt_however_often(error):
    for failed in (0, 2, 3):  # even on what would be the last attempt
        for _ in range(100):
            move = TOPOLOGY.after_failure(failed, error)
            assert move.outcome == "deferred"
            assert move.failed_attempts == failed
            assert move.destination == "workflow.events.retry.1000ms"


def test_after_an_outage_the_budget_is_where_it_was():
    assert TOPOLOGY.after_failure(1, operational("57P01")).failed_attempts == 1
    assert TOPOLOGY.after_failure(1, ValueError("bug")).failed_attempts == 2


def test_a_consumer_without_a_delay_queue_is_refused():
    with pytest.raises(ValueError, match="at least one retry delay"):
        ConsumerTopology("workflow.events", ("#",), ())
