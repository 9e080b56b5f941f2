"""Users and their passwords: plain functions on a SQLAlchemy engine.

Passwords are hashed with argon2id (argon2-cffi's defaults: memory-hard, so a
stolen table is expensive to attack). Hashing takes tens of milliseconds of CPU
on purpose; a caller running under eventlet passes `offload` (for example
`eventlet.tpool.execute`) so that time is spent on a real thread instead of
stalling every other green thread in the process.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ksmart_common.domain.contacts import mask
from ksmart_common.domain.roles import AKSHAYA_OPERATOR, OFFICIAL_ROLES, STAFF_KINDS
from ksmart_common.errors import InvalidInput, TooManyRequests, Unauthenticated

KINDS = ("citizen", *STAFF_KINDS)

# Runs a blocking call: fn(*args) -> result.
Offload = Callable[..., Any]


class User(TypedDict):
    """A user as the rest of the service (and the token claims) see one."""

    user_id: str
    username: str
    display_name: str
    kind: str
    roles: list[str]
    local_body: str | None
    wards: list[int]


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    kind: str
    roles: tuple[str, ...]
    local_body: str | None


# The demo accounts `seed_demo_users` creates (all share one password, given at
# seeding). The one list the docs cite: two citizens (one abroad), an official
# of Kochi Corporation in every role a workflow names (<role>.kochi), a
# clerk of another body, so a demo can show an official of one body being
# refused another body's files, and an Akshaya centre's operator.
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("citizen", "Demo Citizen", "citizen", ("citizen",), None),
    DemoUser("citizen.dubai", "Demo Citizen living in Dubai", "citizen", ("citizen",), None),
    *(
        DemoUser(
            f"{role}.kochi",
            f"{role.replace('_', ' ').capitalize()}, Kochi Corporation",
            "official",
            (role,),
            "KL-EKM-KOC",
        )
        for role in OFFICIAL_ROLES
    ),
    DemoUser(
        "clerk.tvm", "Clerk, Thiruvananthapuram Corporation", "official", ("clerk",), "KL-TVM-TVC"
    ),
    # Counter staff outside any local body: an Akshaya centre's operator,
    # who files for citizens (with their consent by code) to any body. The
    # display name is the centre's, as the citizen's consent message names it.
    DemoUser(
        "akshaya.edappally",
        "Akshaya centre, Edappally",
        "operator",
        (AKSHAYA_OPERATOR,),
        None,
    ),
    DemoUser("auditor", "Demo Auditor", "auditor", ("auditor",), None),
    DemoUser("admin", "Demo Administrator", "administrator", ("administrator",), None),
)

_hasher = PasswordHasher()

_COLUMNS = "user_id, username, display_name, kind, roles, local_body, wards"


def call_directly(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive: stored and looked up lower-case."""
    return username.strip().lower()


def create_user(
    engine: sa.Engine,
    username: str,
    display_name: str,
    kind: str,
    roles: Sequence[str],
    local_body: str | None,
    password: str,
    offload: Offload = call_directly,
    wards: Sequence[int] = (),
) -> User:
    """Create a user; InvalidInput lists every problem at once (a taken
    username included)."""
    username = normalise_username(username)
    _check_new_user(username, kind, roles, password)
    password_hash = offload(_hasher.hash, password)
    try:
        with engine.begin() as conn:
            row = _insert_user(
                conn, username, display_name, kind, roles, local_body, password_hash, wards=wards
            )
    except sa.exc.IntegrityError as error:
        if getattr(error.orig, "pgcode", None) == "23505":  # unique_violation
            raise InvalidInput(
                "the user can't be created",
                [{"field": "username", "message": f"{username!r} is already taken"}],
            ) from None
        raise
    assert row is not None
    return _user(row)


# Repeated wrong passwords lock an account for a while: enough to make
# guessing hopeless, short enough that an official who mistyped can go on.
MAX_FAILED_SIGN_INS = 5
LOCKOUT = timedelta(minutes=15)


def authenticate(
    engine: sa.Engine,
    username: str,
    password: str,
    offload: Offload = call_directly,
    now: datetime | None = None,
) -> User | None:
    """The user if the password is right, else None: the caller can't tell an
    unknown username from a wrong password by the answer, and an unknown
    user still costs one argon2 verification (against a dummy hash); the
    lockout below does reveal that an account exists (docs/decisions.md).

    The fifth wrong password in a row locks the account for LOCKOUT; a
    locked account raises TooManyRequests (with the wait) before any
    password is checked. A disabled account, or one without a password (a
    citizen), never signs in with one."""
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    now = now or datetime.now(UTC)
    # The row stays locked while the password is checked, so attempts on one
    # account are counted one after another: a burst of guesses in parallel
    # is still locked out at the fifth.
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                f"SELECT {_COLUMNS}, password_hash, locked_until, disabled_at"
                " FROM users WHERE username = :username FOR UPDATE"
            ),
            {"username": normalise_username(username)},
        ).one_or_none()
        if row is None or row.password_hash is None or row.disabled_at is not None:
            offload(_verify, _dummy_hash(), password)
            return None
        if row.locked_until is not None and row.locked_until > now:
            wait = int((row.locked_until - now).total_seconds()) + 1
            raise TooManyRequests(
                "too many wrong passwords: the account is locked for a while",
                [{"field": "password", "message": f"try again in {wait // 60 + 1} minutes"}],
                wait,
            )
        if not offload(_verify, row.password_hash, password):
            _count_failure(conn, str(row.user_id), now)
            return None
        _reset_failures(conn, str(row.user_id))
    return _user(row)


def _count_failure(conn: sa.Connection, user_id: str, now: datetime) -> None:
    conn.execute(
        sa.text(
            "UPDATE users SET failed_sign_ins = failed_sign_ins + 1,"
            " locked_until = CASE WHEN failed_sign_ins + 1 >= :limit"
            " THEN CAST(:until AS timestamptz) ELSE locked_until END"
            " WHERE user_id = :uid"
        ),
        {"limit": MAX_FAILED_SIGN_INS, "until": now + LOCKOUT, "uid": user_id},
    )


def _reset_failures(conn: sa.Connection, user_id: str) -> None:
    conn.execute(
        sa.text(
            "UPDATE users SET failed_sign_ins = 0, locked_until = NULL"
            " WHERE user_id = :uid AND (failed_sign_ins > 0 OR locked_until IS NOT NULL)"
        ),
        {"uid": user_id},
    )


def get_user(engine: sa.Engine, user_id: str) -> User | None:
    """The user, unless unknown or disabled."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(f"SELECT {_COLUMNS} FROM users WHERE user_id = :uid AND disabled_at IS NULL"),
            {"uid": user_id},
        ).one_or_none()
    return _user(row) if row is not None else None


def find_or_register_citizen(
    engine: sa.Engine, destination: str, channel: str
) -> tuple[User, bool]:
    """The citizen whose phone or email this is, registered on first sign-in.
    Returns the user and whether they were registered now."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                "INSERT INTO users (user_id, username, display_name, kind, roles)"
                " VALUES (:uid, :username, :display, 'citizen', ARRAY['citizen'])"
                f" ON CONFLICT (username) DO NOTHING RETURNING {_COLUMNS}"
            ),
            {"uid": str(uuid.uuid4()), "username": destination, "display": mask(destination)},
        ).one_or_none()
        if row is not None:
            return _user(row), True
        row = conn.execute(
            sa.text(f"SELECT {_COLUMNS}, disabled_at FROM users WHERE username = :username"),
            {"username": destination},
        ).one()
    if row.kind != "citizen" or row.disabled_at is not None:
        # An official's username is never a phone or an email, and a
        # disabled account stays disabled.
        raise Unauthenticated("this account cannot sign in with a code")
    return _user(row), False


@dataclass(frozen=True)
class DemoSeeding:
    """What seeding did, by username."""

    created: list[str]
    # Demo accounts seeded earlier whose password was set to the given one,
    # or whose lockout (wrong passwords) was lifted.
    reset: list[str]
    # Accounts under a demo username that are not the demo's: left as they are.
    left_alone: list[str]


def seed_demo_users(
    engine: sa.Engine, password: str, offload: Offload = call_directly
) -> DemoSeeding:
    """Make every one of DEMO_USERS sign in with `password`.

    Missing demo users are created. A demo user seeded earlier (by another
    checkout on the same databases, or before `make clean` removed the file
    its password was written in) gets this password and has any lockout
    lifted: only hashes are stored, so the old password cannot be read back,
    and the password `ksmart-admin` writes down and prints must be the one
    that works. Setting a password needs UPDATE on password_hash, which the
    identity service's own role lacks on purpose; `ksmart-admin` seeds as
    the database's owner. With the password the users already have, seeding
    changes nothing and needs no such right.

    An account is the demo's only while it is as DEMO_USERS describes it
    (display name, kind, roles, local body, no wards, not disabled): one
    made or changed for real use under a demo username is left alone and
    reported. Idempotent and safe to run from two processes at once.
    """
    with engine.connect() as conn:
        existing = {
            row.username: row
            for row in conn.execute(
                sa.text(
                    f"SELECT {_COLUMNS}, password_hash, failed_sign_ins, locked_until,"
                    " disabled_at FROM users WHERE username = ANY(:names)"
                ),
                {"names": [demo.username for demo in DEMO_USERS]},
            )
        }
    seeding = DemoSeeding(created=[], reset=[], left_alone=[])
    for demo in DEMO_USERS:
        row = existing.get(demo.username)
        if row is None:
            password_hash = offload(_hasher.hash, password)
            with engine.begin() as conn:
                inserted = _insert_user(
                    conn,
                    demo.username,
                    demo.display_name,
                    demo.kind,
                    demo.roles,
                    demo.local_body,
                    password_hash,
                    skip_if_taken=True,
                )
            if inserted is not None:
                seeding.created.append(demo.username)
        elif not _is_the_demos(row, demo):
            seeding.left_alone.append(demo.username)
        elif _set_demo_password(engine, row, password, offload):
            seeding.reset.append(demo.username)
    return seeding


def _is_the_demos(row: sa.Row, demo: DemoUser) -> bool:
    return (
        row.display_name == demo.display_name
        and row.kind == demo.kind
        and tuple(row.roles) == demo.roles
        and row.local_body == demo.local_body
        and not row.wards
        and row.disabled_at is None
    )


def _set_demo_password(engine: sa.Engine, row: sa.Row, password: str, offload: Offload) -> bool:
    """Give an existing demo user `password`, unlocked; False if it already was."""
    right_password = row.password_hash is not None and offload(_verify, row.password_hash, password)
    if right_password and row.failed_sign_ins == 0 and row.locked_until is None:
        return False
    with engine.begin() as conn:
        if not right_password:
            conn.execute(
                sa.text("UPDATE users SET password_hash = :hash WHERE user_id = :uid"),
                {"hash": offload(_hasher.hash, password), "uid": str(row.user_id)},
            )
        _reset_failures(conn, str(row.user_id))
    return True


def _check_new_user(username: str, kind: str, roles: Sequence[str], password: str) -> None:
    problems = []
    if not username:
        problems.append({"field": "username", "message": "must not be empty"})
    if kind not in KINDS:
        problems.append({"field": "kind", "message": f"must be one of {', '.join(KINDS)}"})
    if isinstance(roles, str) or not all(isinstance(role, str) and role for role in roles):
        problems.append({"field": "roles", "message": "must be a list of role names"})
    if not password:
        problems.append({"field": "password", "message": "must not be empty"})
    if problems:
        raise InvalidInput("the user can't be created", problems)


def _insert_user(
    conn: sa.Connection,
    username: str,
    display_name: str,
    kind: str,
    roles: Sequence[str],
    local_body: str | None,
    password_hash: str,
    skip_if_taken: bool = False,
    wards: Sequence[int] = (),
) -> sa.Row | None:
    on_conflict = "ON CONFLICT (username) DO NOTHING" if skip_if_taken else ""
    return conn.execute(
        sa.text(
            "INSERT INTO users (user_id, username, display_name, kind, roles, local_body, "
            "wards, password_hash) VALUES (:user_id, :username, :display_name, :kind, :roles, "
            f":local_body, :wards, :password_hash) {on_conflict} RETURNING {_COLUMNS}"
        ),
        {
            "user_id": str(uuid.uuid4()),
            "username": username,
            "display_name": display_name,
            "kind": kind,
            "roles": list(roles),
            "local_body": local_body,
            "wards": list(wards),
            "password_hash": password_hash,
        },
    ).one_or_none()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(uuid.uuid4().hex)


def _user(row: sa.Row) -> User:
    return User(
        user_id=str(row.user_id),
        username=row.username,
        display_name=row.display_name,
        kind=row.kind,
        roles=list(row.roles),
        local_body=row.local_body,
        wards=list(row.wards or []),
    )
