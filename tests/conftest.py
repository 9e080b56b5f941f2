import pytest
import sqlalchemy as sa

from ksmart_common.eventstore import EventStore
from tests.support.broker import fresh_vhost
from tests.support.databases import fresh_service_database


@pytest.fixture
def applications_db():
    with fresh_service_database("applications") as database:
        yield database


@pytest.fixture
def store(applications_db):
    """An event store on a fresh database, as the applications service's role."""
    engine = sa.create_engine(applications_db.service_url, pool_size=4)
    store = EventStore(engine)
    yield store
    store.close()
    engine.dispose()


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
