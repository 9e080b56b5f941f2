"""Which errors mean "the infrastructure is out of reach", not "this request
or message is wrong".

An outage (PostgreSQL restarting, RabbitMQ restarting, a called service not
answering) says nothing about the work that met it: the same work succeeds
once the outage ends. So a consumer does not spend a message's retry budget
on it (ksmart_common.consumer), and a service does not let it end the
process (ksmart_common.rpc). Everything else (a bug, a message the domain
refuses, a provider refusing a message) is not an outage.

Only the error itself is classified, not whatever caused it: a domain error
raised while handling an outage is the domain's.
"""

from __future__ import annotations

import amqp.exceptions
import kombu.exceptions
import psycopg2
import sqlalchemy.exc

from ksmart_common.errors import ServiceUnavailable

# SQLSTATE classes and codes that say the server is unreachable or refusing
# work as a whole: connection exceptions (08), insufficient resources such as
# too many connections (53), and operator intervention that ends sessions
# (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now,
# 57P04 database dropped). Not 57014 (a statement timeout): a query that
# times out may time out every time.
_DATABASE_OUTAGE_STATES = ("08", "53", "57P")

# What the AMQP client raises when the broker is unreachable: kombu's
# OperationalError once its own retries are spent, py-amqp's recoverable
# connection errors (the broker closed the connection, e.g. on shutdown),
# and the socket's own (refused, reset, broken pipe).
_BROKER_OUTAGE_ERRORS = (
    kombu.exceptions.OperationalError,
    amqp.exceptions.RecoverableConnectionError,
    ConnectionError,
)


def is_database_outage(error: BaseException) -> bool:
    """PostgreSQL is unreachable, restarting, or refusing connections."""
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(
        error,
        sqlalchemy.exc.InterfaceError | sqlalchemy.exc.DisconnectionError | psycopg2.InterfaceError,
    ):
        return True
    if isinstance(error, sqlalchemy.exc.OperationalError | psycopg2.OperationalError):
        driver_error = error.orig if isinstance(error, sqlalchemy.exc.DBAPIError) else error
        state = getattr(driver_error, "pgcode", None)
        # No SQLSTATE: the client library failed (refused, closed, timed out).
        return state is None or state.startswith(_DATABASE_OUTAGE_STATES)
    return False


def is_broker_outage(error: BaseException) -> bool:
    """RabbitMQ is unreachable or closed the connection."""
    return isinstance(error, _BROKER_OUTAGE_ERRORS)


def is_outage(error: BaseException) -> bool:
    """The database, the broker or a called service is out of reach."""
    return (
        isinstance(error, ServiceUnavailable)
        or is_database_outage(error)
        or is_broker_outage(error)
    )
