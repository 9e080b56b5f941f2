"""Calls between services have a deadline, and their errors cross RPC typed."""

import eventlet
import pytest
from nameko.exceptions import UnknownService, deserialize, serialize

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
