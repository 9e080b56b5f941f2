"""Calls between services have a deadline, and their errors cross RPC typed."""

import eventlet
import pytest
from kombu.exceptions import OperationalError as KombuOperationalError
from nameko.exceptions import RemoteError, UnknownService, deserialize, serialize

from ksmart_common.errors import ServiceUnavailable, VersionConflict
from ksmart_common.rpc import call


def test_a_call_that_does_not_answer_in_time_is_a_service_unavailable():
    with pytest.raises(ServiceUnavailable, match="did not answer in time"):
        call(eventlet.sleep, 5, timeout=0.05)


def test_a_service_that_is_not_running_is_a_service_unavailable():
    def missing():
        raise UnknownService("catalogue")

    with pytest.raises(ServiceUnavailable, match="not running"):
        call(missing)


def test_an_answer_in_time_is_returned():
    assert call(lambda value: value * 2, 21, timeout=1) == 42


@pytest.mark.parametrize(
    "error",
    [
        ServiceUnavailable("catalogue did not answer"),
        VersionConflict("file-1 is at version 3", [{"field": "expected_version", "message": "3"}]),
    ],
)
def test_errors_cross_rpc_as_their_own_type(error):
    again = deserialize(serialize(error))
    assert type(again) is type(error)
    assert again.detail == error.detail and again.problems == error.problems


def _raising(error):
    def method():
        raise error

    return method


@pytest.mark.parametrize(
    "error",
    [
        KombuOperationalError("[Errno 111] Connection refused"),
        RemoteError("OperationalError", "the database system is shutting down"),
        RemoteError("InterfaceError", "connection already closed"),
    ],
)
def test_a_broker_or_database_out_of_reach_is_a_service_unavailable_not_a_failure(error):
    with pytest.raises(ServiceUnavailable):
        call(_raising(error))


def test_any_other_remote_error_stays_what_it_was():
    with pytest.raises(RemoteError, match="ZeroDivisionError"):
        call(_raising(RemoteError("ZeroDivisionError", "division by zero")))
