import pytest

from tests.support.broker import fresh_vhost
from tests.support.databases import fresh_service_database


@pytest.fixture
def applications_db():
    with fresh_service_database("applications") as database:
        yield database


@pytest.fixture
def workflow_db():
    with fresh_service_database("workflow") as database:
        yield database


@pytest.fixture
def identity_db():
    with fresh_service_database("identity") as database:
        yield database


@pytest.fixture
def amqp_uri():
    with fresh_vhost() as uri:
        yield uri
