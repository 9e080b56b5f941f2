"""The administrator's pages: staff listed, created, their roles and
jurisdiction changed, accounts disabled and enabled."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, abort, redirect, render_template, request, session, url_for

from ksmart_common.domain.roles import ADMINISTRATOR, OFFICIAL_ROLES, ROLES_OF_STAFF_KIND
from ksmart_portal import calls, catalogue_text, files_text, i18n, navigation, staff_text
from ksmart_portal.gateway import Reply
from ksmart_portal.navigation import NavLink
from ksmart_portal.problems import FormField, PageErrors, page_errors

# -- the administrator's words -----------------------------------------------------

USERNAME_RULE = i18n.N_(
    "Choose a username of 3 to 64 characters that nobody has yet: lower-case letters, "
    "digits, dots, hyphens or underscores, starting with a letter."
)
WARDS_RULE = i18n.N_(
    "Enter ward numbers of the local body, separated by commas, like 3, 7, or leave "
    "this empty for the whole local body."
)
ROLES_NEEDED = i18n.N_("Choose at least one role for the official.")
LOCAL_BODY_NEEDED = i18n.N_("Choose the local body the official works in.")
STAFF_FIELDS = {
    "username": FormField("username", USERNAME_RULE),
    "display_name": FormField(
        "display_name", i18n.N_("Enter the person's name, up to 200 characters.")
    ),
    "kind": FormField("kind", i18n.N_("Choose what kind of staff member this is.")),
    "roles": FormField("roles", ROLES_NEEDED),
    "local_body": FormField("local_body", LOCAL_BODY_NEEDED),
    "wards": FormField("wards", WARDS_RULE),
}
LAST_ADMINISTRATOR = i18n.N_(
    "This is the last administrator who can sign in: the platform must keep one."
)
STANDING_FIELDS = {"disabled": FormField("standing", LAST_ADMINISTRATOR)}
# A first password the portal makes: 4 groups of 4 from letters and digits
# that cannot be mistaken for one another when read aloud or copied by hand.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PASSWORD_GROUPS = 4
NOTICES = {
    "created": i18n.N_("The account has been created."),
    "changed": i18n.N_(
        "The roles and jurisdiction have been saved. The person's sessions have ended: "
        "they sign in again to work with them."
    ),
    "disabled": i18n.N_(
        "The account is disabled: the person can no longer sign in, and their sessions have ended."
    ),
    "enabled": i18n.N_("The account is enabled: the person can sign in again."),
}
# Each page is the administrator's alone: checked before any of them runs.
ADMINISTRATOR_PAGES = (
    "staff_list",
    "new_staff_member",
    "staff_member",
    "change_staff_member",
    "change_standing",
)


def register(app: Flask) -> None:
    navigation.offer(app, NavLink("staff_list", i18n.N_("Staff"), (ADMINISTRATOR,)))
    _register_staff(app)

    @app.before_request
    def only_for_administrators():
        if request.endpoint in ADMINISTRATOR_PAGES:
            return calls.needs_role(ADMINISTRATOR)
        return None


def _register_staff(app: Flask) -> None:
    @app.get("/staff")
    def staff_list():
        chosen = {
            "local_body": request.args.get("local_body", ""),
            "role": request.args.get("role", ""),
        }
        reply = calls.as_user("GET", "/admin/staff", params=_staff_query(chosen))
        if not reply.ok:
            return render_template("error.html", errors=page_errors(reply)), 400
        bodies = _local_bodies()
        staff = [
            _staff_row(member, bodies)
            for member in reply.body.get("staff", [])
            if not chosen["role"] or chosen["role"] in member.get("roles", [])
        ]
        return render_template(
            "staff_list.html",
            errors=PageErrors(),
            staff=staff,
            chosen=chosen,
            local_bodies=bodies,
            roles=_every_staff_role(),
        )

    @app.route("/staff/new", methods=["GET", "POST"])
    def new_staff_member():
        sent = _staff_form(request.form) if request.method == "POST" else _staff_form({})
        errors = PageErrors()
        if request.method == "POST":
            password = _first_password()
            reply = calls.as_user("POST", "/admin/staff", json=_new_staff(sent, password))
            if reply.ok:
                # Kept only until the member's page shows it, once (staff_member).
                session["first_password"] = {"user_id": reply.body["user_id"], "password": password}
                session["staff_notice"] = "created"
                return redirect(url_for("staff_member", user_id=reply.body["user_id"]), code=303)
            errors = _staff_problems(reply, sent)
        return _render_staff_form(sent, errors)

    @app.get("/staff/<uuid:user_id>")
    def staff_member(user_id):
        member = _member_or_404(user_id)
        shown_once = session.pop("first_password", None) or {}
        password = shown_once.get("password") if shown_once.get("user_id") == str(user_id) else None
        response = _render_member(
            member, PageErrors(), notice=session.pop("staff_notice", None), password=password
        )
        # The first password is on this page alone: no cache may keep it.
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/staff/<uuid:user_id>/jurisdiction")
    def change_staff_member(user_id):
        sent = _staff_form(request.form)
        change = {"roles": sent["roles"], "local_body": sent["local_body"] or None}
        if sent["local_body"]:
            change["wards"] = _wards(sent["wards"])
        return _patch_member(user_id, {k: v for k, v in change.items() if v is not None}, sent)

    @app.post("/staff/<uuid:user_id>/standing")
    def change_standing(user_id):
        disabled = request.form.get("disabled")
        if disabled not in ("true", "false"):
            abort(400)
        return _patch_member(user_id, {"disabled": disabled == "true"}, None)


def _patch_member(user_id, change: dict[str, Any], sent: dict[str, Any] | None):
    reply = calls.as_user("PATCH", f"/admin/staff/{user_id}", json=change)
    if reply.status == 404:
        abort(404)
    if reply.ok:
        notice = (
            "changed"
            if "disabled" not in change
            else ("disabled" if change["disabled"] else "enabled")
        )
        session["staff_notice"] = notice
        return redirect(url_for("staff_member", user_id=user_id), code=303)
    member = _member_or_404(user_id)
    fields = STAFF_FIELDS if sent is not None else STANDING_FIELDS
    errors = page_errors(_fields_of_lists(reply), fields)
    response = _render_member(member, errors, sent=sent)
    response.status_code = 400
    return response


def _render_member(member, errors: PageErrors, *, notice=None, password=None, sent=None):
    bodies = _local_bodies()
    form = sent or {
        "roles": list(member.get("roles", [])),
        "local_body": member.get("local_body") or "",
        "wards": ", ".join(str(ward) for ward in member.get("wards", [])),
    }
    return Response(
        render_template(
            "staff_member.html",
            member=_staff_row(member, bodies),
            form=form,
            errors=errors,
            notice=i18n.gettext(NOTICES[notice]) if notice in NOTICES else None,
            password=password,
            local_bodies=bodies,
            role_options=_official_roles(),
        )
    )


def _render_staff_form(sent: dict[str, Any], errors: PageErrors):
    return render_template(
        "staff_new.html",
        sent=sent,
        errors=errors,
        kind_options=[(kind, i18n.gettext(name)) for kind, name in staff_text.KIND_NAMES.items()],
        role_options=_official_roles(),
        local_bodies=_local_bodies(),
    ), (400 if errors else 200)


def _member_or_404(user_id) -> dict[str, Any]:
    """One staff member, from the list (the API has no page of one)."""
    reply = calls.as_user("GET", "/admin/staff")
    for member in reply.body.get("staff", []) if reply.ok else []:
        if member.get("user_id") == str(user_id):
            return member
    abort(404)


def _staff_query(chosen: Mapping[str, str]) -> dict[str, str]:
    """The API filters by local body and kind; a role narrows the kind here,
    and the list by role is narrowed by the page."""
    query = {}
    if chosen["local_body"]:
        query["local_body"] = chosen["local_body"]
    for kind, roles in ROLES_OF_STAFF_KIND.items():
        if chosen["role"] in roles:
            query["kind"] = kind
    return query


def _official_roles() -> list[tuple[str, str]]:
    return [(role, files_text.role_name(role)) for role in OFFICIAL_ROLES]


def _every_staff_role() -> list[tuple[str, str]]:
    return [
        (role, staff_text.role_name(role))
        for roles in ROLES_OF_STAFF_KIND.values()
        for role in roles
    ]


def _local_bodies() -> dict[str, str]:
    """Every local body of the directory: code to its name in the page's language."""
    reply = calls.call("GET", "/local-bodies")
    bodies = reply.body.get("local_bodies", []) if reply.ok else []
    named = {
        body["code"]: catalogue_text.local(body.get("name")) or body["code"] for body in bodies
    }
    return dict(sorted(named.items(), key=lambda item: item[1]))


def _staff_row(member: Mapping[str, Any], bodies: Mapping[str, str]) -> dict[str, Any]:
    local_body = member.get("local_body")
    return {
        "user_id": member.get("user_id"),
        "username": member.get("username"),
        "display_name": member.get("display_name"),
        "kind": member.get("kind"),
        "kind_name": staff_text.kind_name(str(member.get("kind", ""))),
        "official": member.get("kind") == staff_text.OFFICIAL,
        "roles": [staff_text.role_name(str(role)) for role in member.get("roles", [])],
        "local_body": bodies.get(local_body, local_body) if local_body else None,
        "wards": ", ".join(str(ward) for ward in member.get("wards", [])),
        "disabled": bool(member.get("disabled")),
        "locked_until": files_text.day_and_time(member.get("locked_until")),
    }


def _staff_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """What the administrator typed and chose, kept to show back."""
    roles = form.getlist("roles") if hasattr(form, "getlist") else []
    return {
        "username": str(form.get("username", "")).strip(),
        "display_name": str(form.get("display_name", "")).strip(),
        "kind": str(form.get("kind", staff_text.OFFICIAL)),
        "roles": [str(role) for role in roles],
        "local_body": str(form.get("local_body", "")),
        "wards": str(form.get("wards", "")).strip(),
    }


def _new_staff(sent: Mapping[str, Any], password: str) -> dict[str, Any]:
    """The API's request. Roles, a local body and wards are an official's
    only: for the other kinds the one role of the kind is sent, and what the
    form holds for officials is left out (its hint says so)."""
    official = sent["kind"] == staff_text.OFFICIAL
    roles = sent["roles"] if official else list(ROLES_OF_STAFF_KIND.get(sent["kind"], ()))
    return {
        "username": sent["username"],
        "display_name": sent["display_name"],
        "kind": sent["kind"],
        "roles": roles,
        "local_body": (sent["local_body"] or None) if official else None,
        "wards": _wards(sent["wards"]) if official else [],
        "password": password,
    }


def _wards(text: str) -> list[int | str]:
    """Ward numbers as typed: whole numbers as numbers, anything else as it
    is, so that the gateway names every problem at once."""
    wards: list[int | str] = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if part:
            wards.append(int(part) if part.isdigit() else part)
    return wards


def _staff_problems(reply: Reply, sent: Mapping[str, Any]) -> PageErrors:
    errors = page_errors(_fields_of_lists(reply), STAFF_FIELDS)
    # A missing local body is found by identity only once the request is
    # well formed: said here at once with the rest.
    official = sent["kind"] == staff_text.OFFICIAL
    if official and not sent["local_body"] and not errors.for_field("local_body"):
        errors.add(i18n.gettext(LOCAL_BODY_NEEDED), "local_body")
    order = list(STAFF_FIELDS)
    errors.errors.sort(key=lambda e: order.index(e.field) if e.field in order else -1)
    return errors


def _fields_of_lists(reply: Reply) -> Reply:
    """A problem with one item of a list ("wards.2") belongs to the list's field."""
    problems = [
        {**problem, "field": str(problem.get("field", "")).split(".")[0]}
        if isinstance(problem, Mapping)
        else problem
        for problem in reply.body.get("problems") or []
    ]
    return Reply(reply.status, {**reply.body, "problems": problems}, reply.headers)


def _first_password() -> str:
    groups = (
        "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(4)) for _ in range(PASSWORD_GROUPS)
    )
    return "-".join(groups)
