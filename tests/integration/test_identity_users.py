"""Users and passwords on a real PostgreSQL, connected as the identity service's
own least-privileged role."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from ksmart_common.domain.roles import OFFICIAL_ROLES
from ksmart_common.errors import InvalidInput
from ksmart_identity import keys
from ksmart_identity.users import (
    DEMO_USERS,
    DemoSeeding,
    authenticate,
    create_user,
    seed_demo_users,
)

INSUFFICIENT_PRIVILEGE = "42501"
CHECK_VIOLATION = "23514"


@pytest.fixture
def engine(identity_db):
    engine = sa.create_engine(identity_db.service_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clerk(engine):
    return create_user(
        engine, "clerk.kochi", "Clerk, Kochi", "official", ["clerk"], "KL-EKM-KOC", "s3cret-ജ"
    )


def _pgcode(error: sa.exc.DBAPIError) -> str:
    return error.value.orig.pgcode


def test_the_right_password_authenticates_the_user(engine, clerk):
    assert clerk["kind"] == "official"
    assert authenticate(engine, "clerk.kochi", "s3cret-ജ") == {
        "user_id": clerk["user_id"],
        "username": "clerk.kochi",
        "display_name": "Clerk, Kochi",
        "kind": "official",
        "roles": ["clerk"],
        "local_body": "KL-EKM-KOC",
        "wards": [],
    }


def test_usernames_are_case_insensitive(engine, clerk):
    assert authenticate(engine, "  Clerk.KOCHI ", "s3cret-ജ")["user_id"] == clerk["user_id"]


@pytest.mark.parametrize("password", ["wrong", "S3CRET-ജ", "s3cret-ജ ", ""])
def test_a_wrong_password_authenticates_nobody(engine, clerk, password):
    assert authenticate(engine, "clerk.kochi", password) is None


def test_an_unknown_user_authenticates_nobody(engine, clerk):
    assert authenticate(engine, "nobody", "s3cret-ജ") is None


def test_an_unknown_user_still_costs_a_password_verification(engine):
    verified = []

    def offload(fn, *args):
        verified.append(fn.__name__)
        return fn(*args)

    assert authenticate(engine, "nobody", "guess", offload=offload) is None
    assert verified == ["_verify"]


def test_only_an_argon2id_hash_is_stored(identity_db, clerk):
    admin = sa.create_engine(identity_db.superuser_url)
    with admin.connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM users")).scalar_one()
    admin.dispose()
    assert stored.startswith("$argon2id$")
    assert "s3cret" not in stored


def test_creating_a_user_lists_every_problem_at_once(engine):
    with pytest.raises(InvalidInput) as refused:
        create_user(engine, "  ", "Nobody", "wizard", "clerk", None, "")
    assert [problem["field"] for problem in refused.value.problems] == [
        "username",
        "kind",
        "roles",
        "password",
    ]


def test_a_taken_username_is_refused_whatever_its_case(engine, clerk):
    with pytest.raises(InvalidInput) as refused:
        create_user(engine, "CLERK.kochi", "Other", "official", ["clerk"], None, "pw")
    assert refused.value.problems == [
        {"field": "username", "message": "'clerk.kochi' is already taken"}
    ]


def test_the_database_refuses_an_unknown_kind_or_an_upper_case_username(engine):
    insert = sa.text(
        "INSERT INTO users (user_id, username, display_name, kind, roles, password_hash) "
        "VALUES (gen_random_uuid(), :username, 'x', :kind, ARRAY['clerk'], 'h')"
    )
    for username, kind in [("wizard", "wizard"), ("Clerk", "official")]:
        with pytest.raises(sa.exc.IntegrityError) as refused, engine.begin() as conn:
            conn.execute(insert, {"username": username, "kind": kind})
        assert _pgcode(refused) == CHECK_VIOLATION


def test_demo_seeding_creates_the_demo_users_once(engine):
    password = "demo-password"
    assert seed_demo_users(engine, password).created == [demo.username for demo in DEMO_USERS]
    # Again with the same password: nothing to do, and nothing the service's
    # own role may not do (it cannot set a password).
    assert seed_demo_users(engine, password) == DemoSeeding(created=[], reset=[], left_alone=[])

    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one() == len(DEMO_USERS)
    for demo in DEMO_USERS:
        user = authenticate(engine, demo.username, password)
        assert (user["kind"], tuple(user["roles"]), user["local_body"]) == (
            demo.kind,
            demo.roles,
            demo.local_body,
        )


def test_demo_seeding_fills_in_only_the_missing_users(engine):
    create_user(engine, "auditor", "Existing Auditor", "auditor", ["auditor"], None, "own")
    seeding = seed_demo_users(engine, "demo")
    assert "auditor" not in seeding.created and len(seeding.created) == len(DEMO_USERS) - 1
    assert seeding.left_alone == ["auditor"]
    assert authenticate(engine, "auditor", "own")["display_name"] == "Existing Auditor"


def test_the_demo_users_cover_citizens_officials_of_two_bodies_and_an_auditor():
    by_name = {demo.username: demo for demo in DEMO_USERS}
    assert {"citizen", "citizen.dubai", "clerk.tvm", "auditor"} <= set(by_name)
    # Every role a workflow can wait on has a Kochi official to demonstrate it.
    for role in OFFICIAL_ROLES:
        assert by_name[f"{role}.kochi"].roles == (role,)
    assert by_name["clerk.kochi"].local_body != by_name["clerk.tvm"].local_body


@pytest.mark.parametrize(
    "statement",
    [
        # Roles change only through update_staff, which ends sessions; the
        # role may update those columns, never the password hash or the id.
        "UPDATE users SET password_hash = 'x'",
        "UPDATE users SET user_id = gen_random_uuid()",
        "UPDATE users SET username = 'someone.else'",
        "DELETE FROM users",
        "TRUNCATE users",
        "UPDATE signing_keys SET public_jwk = '{}'",
        "DELETE FROM signing_keys",
    ],
)
def test_the_identity_role_holds_only_the_privileges_it_needs(engine, clerk, statement):
    with pytest.raises(sa.exc.ProgrammingError) as refused, engine.begin() as conn:
        conn.execute(sa.text(statement))
    assert _pgcode(refused) == INSUFFICIENT_PRIVILEGE
    assert authenticate(engine, "clerk.kochi", "s3cret-ജ")["roles"] == ["clerk"]


def test_a_stored_private_key_may_be_destroyed_never_rewritten(engine):
    """Retiring clears a key's private half, so the role may update it: only
    ever to nothing (identity migration 0007)."""
    kid = keys.rotate_signing_key(engine).kid
    with pytest.raises(sa.exc.ProgrammingError) as refused, engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE signing_keys SET private_key_pem = 'x' WHERE kid = :kid"),
            {"kid": kid},
        )
    assert _pgcode(refused) == INSUFFICIENT_PRIVILEGE
    assert keys.retire_signing_key(engine, kid, datetime.now(UTC)) is True
