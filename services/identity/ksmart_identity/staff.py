"""Officials, Akshaya operators, auditors and administrators, as
administrators manage them.

An official holds roles in one jurisdiction: a local body of the directory
and, optionally, some of its wards. The other kinds have none (an Akshaya
operator files for citizens to any body). Changing a person's roles or
jurisdiction, or disabling them, ends their sessions: the tokens they hold
were issued for what they were, not what they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ksmart_common.domain.roles import ADMINISTRATOR, ROLES_OF_STAFF_KIND, STAFF_KINDS
from ksmart_common.errors import Forbidden, InvalidInput, NotFound
from ksmart_identity import directory
from ksmart_identity.sessions import revoke_user_sessions
from ksmart_identity.users import (
    Offload,
    User,
    call_directly,
    create_user,
    get_user,
    normalise_username,
)

MIN_PASSWORD_LENGTH = 12


def require_administrator(actor: dict[str, Any]) -> None:
    """The service checks again what the gateway checked: defence in depth."""
    if ADMINISTRATOR not in actor.get("roles", ()):
        raise Forbidden("only an administrator manages officials")


def jurisdiction_problems(
    engine: sa.Engine, kind: str, local_body: str | None, wards: Sequence[int]
) -> list[dict[str, str]]:
    if kind != "official":
        if local_body is not None or wards:
            return [{"field": "local_body", "message": f"an {kind} has no jurisdiction"}]
        return []
    if local_body is None:
        return [{"field": "local_body", "message": "an official needs a local body"}]
    body = directory.get_local_body(engine, local_body)
    if body is None or body.get("dissolved_on"):
        return [{"field": "local_body", "message": f"{local_body!r} is not in the directory"}]
    return [
        {"field": "wards", "message": f"{local_body} has no ward {ward}"}
        for ward in wards
        if not (isinstance(ward, int) and 1 <= ward <= body["wards"])
    ]


def roles_problems(kind: str, roles: Sequence[str]) -> list[dict[str, str]]:
    allowed = ROLES_OF_STAFF_KIND.get(kind)
    if allowed is None:
        return [{"field": "kind", "message": f"one of {', '.join(STAFF_KINDS)}"}]
    if not roles:
        return [{"field": "roles", "message": "at least one role"}]
    return [
        {"field": "roles", "message": f"{role!r} is not a role of an {kind}: {', '.join(allowed)}"}
        for role in roles
        if role not in allowed
    ]


def create_staff(
    engine: sa.Engine,
    username: str,
    display_name: str,
    kind: str,
    roles: Sequence[str],
    local_body: str | None,
    wards: Sequence[int],
    password: str,
    offload: Offload = call_directly,
) -> User:
    """A new official, auditor or administrator; every problem at once."""
    problems = roles_problems(kind, roles) + jurisdiction_problems(engine, kind, local_body, wards)
    name = normalise_username(username)
    if name.startswith("+") or "@" in name:
        # Phones and emails are citizens' sign-in names.
        problems.append({"field": "username", "message": "not a phone number or an email"})
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(
            {"field": "password", "message": f"at least {MIN_PASSWORD_LENGTH} characters"}
        )
    if problems:
        raise InvalidInput("the user can't be created", problems)
    return create_user(
        engine, name, display_name, kind, roles, local_body, password, offload, wards=wards
    )


def update_staff(
    engine: sa.Engine,
    user_id: str,
    now: datetime,
    roles: Sequence[str] | None = None,
    local_body: str | None = None,
    wards: Sequence[int] | None = None,
    disabled: bool | None = None,
) -> User | None:
    """Change a staff member's roles, jurisdiction or standing; their
    sessions end. Returns the user as now (None once disabled).

    Moving an official to another body clears their wards unless new ones
    are given (ward 3 of one body is not ward 3 of another). The last
    active administrator can be neither demoted nor disabled: only the
    bootstrap command could then let anyone in."""
    if roles is None and local_body is None and wards is None and disabled is None:
        return get_user(engine, user_id)
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                "SELECT kind, roles, local_body, wards, disabled_at FROM users"
                " WHERE user_id = :uid AND kind <> 'citizen' FOR UPDATE"
            ),
            {"uid": user_id},
        ).one_or_none()
        if row is None:
            raise NotFound(f"no official, auditor or administrator {user_id}")
        new_roles = list(roles) if roles is not None else list(row.roles)
        new_body = local_body if local_body is not None else row.local_body
        if wards is not None:
            new_wards = list(wards)
        elif new_body != row.local_body:
            new_wards = []
        else:
            new_wards = list(row.wards or [])
        problems = roles_problems(row.kind, new_roles) + jurisdiction_problems(
            engine, row.kind, new_body, new_wards
        )
        if row.kind == "administrator" and (disabled or ADMINISTRATOR not in new_roles):
            others = conn.execute(
                sa.text(
                    "SELECT count(*) FROM users WHERE kind = 'administrator'"
                    " AND disabled_at IS NULL AND user_id <> :uid"
                    " AND :role = ANY(roles)"
                ),
                {"uid": user_id, "role": ADMINISTRATOR},
            ).scalar_one()
            if others == 0:
                problems.append(
                    {"field": "disabled", "message": "the last administrator must stay one"}
                )
        if problems:
            raise InvalidInput("the user can't be changed", problems)
        conn.execute(
            sa.text(
                "UPDATE users SET roles = :roles, local_body = :body, wards = :wards,"
                " disabled_at = CASE WHEN :disable THEN coalesce(disabled_at, :now)"
                " WHEN :enable THEN NULL ELSE disabled_at END WHERE user_id = :uid"
            ),
            {
                "roles": new_roles,
                "body": new_body,
                "wards": new_wards,
                "disable": disabled is True,
                "enable": disabled is False,
                "now": now,
                "uid": user_id,
            },
        )
        revoke_user_sessions(conn, user_id, now, "roles, jurisdiction or standing changed")
    return get_user(engine, user_id)


def list_staff(
    engine: sa.Engine, local_body: str | None = None, kind: str | None = None
) -> list[dict[str, Any]]:
    query = (
        "SELECT user_id, username, display_name, kind, roles, local_body, wards, disabled_at,"
        " locked_until FROM users WHERE kind <> 'citizen'"
    )
    params: dict[str, Any] = {}
    if local_body is not None:
        query += " AND local_body = :body"
        params["body"] = local_body
    if kind is not None:
        query += " AND kind = :kind"
        params["kind"] = kind
    with engine.connect() as conn:
        rows = conn.execute(sa.text(query + " ORDER BY username"), params).all()
    return [
        {
            "user_id": str(row.user_id),
            "username": row.username,
            "display_name": row.display_name,
            "kind": row.kind,
            "roles": list(row.roles),
            "local_body": row.local_body,
            "wards": list(row.wards or []),
            "disabled": row.disabled_at is not None,
            "locked_until": row.locked_until.isoformat() if row.locked_until else None,
        }
        for row in rows
    ]
