"""Limits that must hold when requests come in parallel, and the rules
that keep staff changes safe: run against the identity service's own
functions on a fresh database, many threads at once."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ksmart_common.errors import InvalidInput, TooManyRequests, Unauthenticated
from ksmart_identity import otp, sessions, staff
from ksmart_identity.directory import load_directory, shipped_directory
from ksmart_identity.users import authenticate, create_user

PASSWORD = "the right password"


@pytest.fixture
def engine(identity_db):
    engine = sa.create_engine(identity_db.service_url, pool_size=25)
    yield engine
    engine.dispose()


def _in_parallel(count, work):
    outcomes, lock = [], threading.Lock()

    def run(index):
        try:
            result = work(index)
        except Exception as error:  # noqa: BLE001 - recorded for the assertions
            result = error
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_a_burst_of_wrong_passwords_is_locked_out_at_the_fifth(engine):
    create_user(engine, "clerk.kochi", "Clerk", "official", ["clerk"], "KL-EKM-KOC", PASSWORD)
    outcomes = _in_parallel(20, lambda _: authenticate(engine, "clerk.kochi", "a wrong guess"))
    assert outcomes.count(None) == 5
    assert sum(isinstance(outcome, TooManyRequests) for outcome in outcomes) == 15
    with pytest.raises(TooManyRequests):
        authenticate(engine, "clerk.kochi", PASSWORD)


def test_the_per_address_limit_holds_for_requests_in_parallel(engine):
    settings = otp.OtpSettings(per_client=3)
    now = datetime.now(UTC)

    def ask(index):
        return otp.request_code(engine, f"+9715{index:08d}", "sms", "198.51.100.7", now, settings)

    outcomes = _in_parallel(12, ask)
    assert sum(isinstance(outcome, otp.Challenge) for outcome in outcomes) == 3
    assert sum(isinstance(outcome, TooManyRequests) for outcome in outcomes) == 9


def test_any_rotated_out_refresh_token_coming_back_ends_the_session(engine):
    user = create_user(engine, "auditor", "Auditor", "auditor", ["auditor"], None, PASSWORD)
    now = datetime.now(UTC)
    first = sessions.start_session(engine, user["user_id"], now)
    second = sessions.refresh_session(engine, first.refresh_token, now)
    third = sessions.refresh_session(engine, second.refresh_token, now)
    with pytest.raises(Unauthenticated, match="used before"):
        sessions.refresh_session(engine, first.refresh_token, now)  # two rotations ago
    with pytest.raises(Unauthenticated, match="ended"):
        sessions.refresh_session(engine, third.refresh_token, now)
    revoked = {entry["sid"] for entry in sessions.revoked_since(engine, now - timedelta(1))}
    assert first.session_id in revoked


@pytest.fixture
def directory_loaded(engine):
    load_directory(engine, shipped_directory())


def test_moving_an_official_to_another_body_drops_the_old_bodys_wards(engine, directory_loaded):
    official = staff.create_staff(
        engine, "clerk.ward", "Ward clerk", "official", ["clerk"], "KL-EKM-KOC", [2, 3], PASSWORD
    )
    assert official["wards"] == [2, 3]
    moved = staff.update_staff(
        engine, official["user_id"], datetime.now(UTC), local_body="KL-TVM-TVC"
    )
    assert (moved["local_body"], moved["wards"]) == ("KL-TVM-TVC", [])


def test_an_empty_change_leaves_sessions_alone(engine, directory_loaded):
    official = staff.create_staff(
        engine, "clerk.calm", "Calm", "official", ["clerk"], "KL-EKM-KOC", [], PASSWORD
    )
    now = datetime.now(UTC)
    session = sessions.start_session(engine, official["user_id"], now)
    staff.update_staff(engine, official["user_id"], now)
    assert sessions.refresh_session(engine, session.refresh_token, now)


def test_the_last_administrator_can_be_neither_disabled_nor_demoted(engine, directory_loaded):
    only = staff.create_staff(
        engine, "root.admin", "Root", "administrator", ["administrator"], None, [], PASSWORD
    )
    now = datetime.now(UTC)
    with pytest.raises(InvalidInput, match="can't be changed"):
        staff.update_staff(engine, only["user_id"], now, disabled=True)
    second = staff.create_staff(
        engine, "second.admin", "Second", "administrator", ["administrator"], None, [], PASSWORD
    )
    assert staff.update_staff(engine, only["user_id"], now, disabled=True) is None
    with pytest.raises(InvalidInput):
        staff.update_staff(engine, second["user_id"], now, disabled=True)


def test_staff_names_are_never_phone_numbers_or_emails_and_bodies_must_exist(
    engine, directory_loaded
):
    with pytest.raises(InvalidInput) as raised:
        staff.create_staff(
            engine, "+971501234567", "X", "official", ["clerk"], "KL-ZZZ-NOPE", [1], "short"
        )
    assert {p["field"] for p in raised.value.problems} == {"username", "local_body", "password"}
    assert uuid.UUID(
        staff.create_staff(engine, "auditor.two", "A", "auditor", ["auditor"], None, [], PASSWORD)[
            "user_id"
        ]
    )
