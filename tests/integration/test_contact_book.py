"""The contacts the notifications service learned from identity, on a real
database as the service's own least-privileged role."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ksmart_notifications import contact_book
from tests.support.databases import fresh_service_database

NOW = datetime(2026, 11, 30, 6, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine():
    with fresh_service_database("notifications") as database:
        engine = sa.create_engine(database.service_url, pool_size=2)
        yield engine
        engine.dispose()


def test_a_citizen_not_yet_learned_is_unknown(engine):
    with engine.connect() as conn:
        assert contact_book.known(conn, str(uuid.uuid4())) is None


def test_what_identity_answered_is_kept_even_when_it_is_nowhere(engine):
    reached, in_app_only = str(uuid.uuid4()), str(uuid.uuid4())
    with engine.begin() as conn:
        contact_book.remember(conn, reached, {"sms": "+971501234567"}, NOW)
        contact_book.remember(conn, in_app_only, {}, NOW)
    with engine.connect() as conn:
        assert contact_book.known(conn, reached) == {"sms": "+971501234567"}
        # Known to have no phone or email: not asked again.
        assert contact_book.known(conn, in_app_only) == {}


def test_learning_again_keeps_the_latest_answer(engine):
    # Two notices for a new citizen may both ask identity at once.
    citizen = str(uuid.uuid4())
    with engine.begin() as conn:
        contact_book.remember(conn, citizen, {"email": "a@example.org"}, NOW)
    with engine.begin() as conn:
        contact_book.remember(conn, citizen, {"sms": "+919847012345"}, NOW + timedelta(days=1))
    with engine.connect() as conn:
        assert contact_book.known(conn, citizen) == {"sms": "+919847012345"}
        learned_at = conn.execute(
            sa.text("SELECT learned_at FROM contacts WHERE user_id = :id"), {"id": citizen}
        ).scalar()
    assert learned_at == NOW + timedelta(days=1)


def test_the_service_role_cannot_delete_what_it_learned(engine):
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM contacts"))
