"""An official's pages: the inbox of the files waiting on their roles in
their local body (soonest due first, overdue said in words, with counts,
filters and pages), and a file's page: its answers, its documents opened
in the browser, its timeline, the decisions its state allows and handing
it to a named colleague.

A decision carries the version of the file the official read (If-Match).
When someone acted first the gateway refuses it (409 or 412) and records
nothing: the page comes back with the file as it is now, says so in
words, and keeps the remarks typed, so a decision is never lost without
a word, and never taken twice (POST, then a redirect to the page)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, abort, redirect, render_template, request, session, url_for

from ksmart_common.domain.file import SUPERVISOR_ROLES
from ksmart_common.domain.roles import OFFICIAL_ROLES
from ksmart_portal import calls, catalogue_text, files_text, i18n, navigation, security
from ksmart_portal.catalogue_text import local
from ksmart_portal.navigation import NavLink
from ksmart_portal.problems import FormField, PageErrors, page_errors

FILES_PER_PAGE = 25
# What the portal shows in the browser as it is, by its real type; any
# other type a document could claim is refused rather than passed on.
VIEWABLE_TYPES = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
# Document codes are a definition's names: nothing else reaches a path or a header.
DOCUMENT_CODE = re.compile(r"^[a-z0-9_]{1,64}$")
REMARKS_NEEDED = i18n.N_("Write your remarks: this decision needs them.")
ACTION_FIELDS = {"remarks": FormField("remarks", REMARKS_NEEDED)}
ASSIGN_FIELDS = {"official_id": FormField("official_id")}

CHOOSE_ACTION = i18n.N_("Choose what to do with this file.")
CHOOSE_OFFICIAL = i18n.N_("Choose the official to give this file to.")
STALE = i18n.N_(
    "Someone acted on this file first. Here it is as it is now. "
    "Your decision was not recorded: read the file again, then decide if you still need to."
)
ALREADY_DONE = i18n.N_(
    "Your decision had already been recorded (the form was sent twice). It was recorded once."
)
DECIDED = i18n.N_("Your decision has been recorded: %(action)s.")
ASSIGNED = i18n.N_("The file has been given to %(official)s.")
TAKEN = i18n.N_("The file is now yours.")


@dataclass(frozen=True)
class InboxFilters:
    """The inbox's GET form, as the gateway's query names it."""

    service: str = ""
    state: str = ""
    overdue: bool = False
    assigned: str = ""  # "", "me" or "unassigned"

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> InboxFilters:
        assigned = args.get("assigned", "")
        return cls(
            service=args.get("service", "").strip(),
            state=args.get("state", "").strip() if args.get("service") else "",
            overdue=args.get("overdue") == "yes",
            assigned=assigned if assigned in ("me", "unassigned") else "",
        )

    def params(self) -> dict[str, str]:
        chosen = {
            "service": self.service,
            "state": self.state,
            "overdue": "true" if self.overdue else "",
            "assigned": self.assigned,
        }
        return {name: value for name, value in chosen.items() if value}

    def form(self) -> dict[str, str]:
        """The filters as the form's own fields (for the paging links)."""
        chosen = {**self.params(), "overdue": "yes" if self.overdue else ""}
        return {name: value for name, value in chosen.items() if value}


# -- how the inbox and a file read ---------------------------------------------


def assigned_to_words(assigned_to: str | None, me: str | None) -> str:
    if not assigned_to:
        return i18n.gettext("Nobody yet")
    if assigned_to == me:
        return i18n.gettext("You")
    return i18n.gettext("Another official")


def inbox_row(entry: Mapping[str, Any], service: Mapping[str, Any], me: str | None) -> dict:
    """One file in the inbox, in plain words; overdue said, not only coloured."""
    return {
        "file_id": entry.get("file_id"),
        "file_number": entry.get("file_number") or i18n.gettext("Not numbered yet"),
        "service_name": local(service.get("name")) or str(entry.get("service_code", "")),
        "state": files_text.state_label(service, str(entry.get("state", ""))),
        "waits_on": files_text.role_name(entry.get("waits_on")),
        "due": files_text.day(entry.get("state_due_at")),
        "overdue": bool(entry.get("overdue")),
        "assigned": assigned_to_words(entry.get("assigned_to"), me),
        "submitted": files_text.day(entry.get("submitted_at")),
    }


def count_rows(counts: Mapping[str, Any], my_roles: list[str]) -> list[dict[str, Any]]:
    """The office's files per role they wait on, the caller's roles first."""
    rows = [
        {
            "role": files_text.role_name(entry.get("waits_on")),
            "mine": entry.get("waits_on") in my_roles,
            "pending": int(entry.get("pending", 0)),
            "overdue": int(entry.get("overdue", 0)),
            "unassigned": int(entry.get("unassigned", 0)),
        }
        for entry in counts.get("roles") or []
    ]
    return sorted(rows, key=lambda row: not row["mine"])


def answer_text(field: Mapping[str, Any], value: Any) -> str:
    if isinstance(value, bool):
        return i18n.gettext("Yes") if value else i18n.gettext("No")
    choices = {choice.get("value"): choice.get("label") for choice in field.get("choices", [])}
    if value in choices:
        return local(choices[value])
    return "" if value is None else str(value)


def answers(file: Mapping[str, Any], definition: Mapping[str, Any]) -> list[dict[str, str]]:
    """The applicant's answers with their labels, in the form's order; an
    answer the definition does not name is shown by its name."""
    form = file.get("form") or {}
    known = [field for field in definition.get("fields", []) if field.get("name") in form]
    named = {field.get("name") for field in known}
    shown = [
        {
            "label": local(field.get("label")) or field["name"],
            "value": answer_text(field, form[field["name"]]),
        }
        for field in known
    ]
    shown += [
        {"label": name.replace("_", " "), "value": answer_text({}, value)}
        for name, value in form.items()
        if name not in named
    ]
    return shown


def documents(file: Mapping[str, Any], definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The file's documents with their labels, each opened by the portal."""
    labels = {spec.get("code"): spec.get("label") for spec in definition.get("documents", [])}
    return [
        {
            "code": code,
            "label": local(labels.get(code)) or code.replace("_", " "),
            "format": catalogue_text.formats([upload.get("media_type", "")]),
            "viewable": upload.get("media_type") in VIEWABLE_TYPES,
        }
        for code, upload in (file.get("documents") or {}).items()
    ]


def decisions(file: Mapping[str, Any], definition: Mapping[str, Any], my_roles: list[str]) -> list:
    """The actions the file's state allows, if it waits on one of the
    caller's roles: each with its label and whether it needs remarks."""
    if file.get("waits_on") not in my_roles:
        return []
    workflow = definition.get("workflow") or {}
    specs = {spec.get("name"): spec for spec in workflow.get("actions", [])}
    return [
        {
            "name": name,
            "label": files_text.action_label(definition, name),
            "requires_remarks": bool(specs.get(name, {}).get("requires_remarks")),
        }
        for name in file.get("allowed_actions") or []
    ]


def may_assign(file: Mapping[str, Any], my_roles: list[str]) -> str | None:
    """ "anyone": a supervisor gives the file to any official of the role it
    waits on; "self": an official of that role takes it; None otherwise."""
    waits_on = file.get("waits_on")
    if waits_on not in OFFICIAL_ROLES:
        return None
    if set(my_roles) & set(SUPERVISOR_ROLES):
        return "anyone"
    return "self" if waits_on in my_roles else None


def acted_twice(file: Mapping[str, Any], sent_version: int, action: str, me: str | None) -> bool:
    """The decision refused as stale is one this official had already
    taken (a form sent twice): it is in the timeline after the version sent."""
    return any(
        entry.get("version", 0) > sent_version
        and entry.get("action") == action
        and entry.get("actor_id") == me
        for entry in file.get("timeline") or []
    )


# -- the gateway's answers -------------------------------------------------------


def _definition(file: Mapping[str, Any]) -> dict[str, Any]:
    """The definition the file was filed under (labels, remarks rules),
    else today's of its service."""
    content_hash = str(file.get("definition_hash") or "")
    if content_hash:
        reply = calls.call("GET", f"/definitions/{quote(content_hash, safe='')}")
        if reply.ok:
            return reply.body
    return calls.service(str(file.get("service_code", "")))


def _colleagues(role: str) -> list[dict[str, Any]]:
    reply = calls.call_as_user("GET", "/inbox/officials", params={"role": role})
    if reply is None or not reply.ok:
        return []
    return list(reply.body.get("officials") or [])


def _read_file(file_id) -> dict[str, Any]:
    """The file; 404 for one the gateway will not show."""
    reply = calls.as_user("GET", f"/files/{file_id}")
    if not reply.ok:
        abort(404)
    return reply.body


def _render_file(
    file: dict[str, Any], errors: PageErrors | None = None, status: int = 200, **extra
):
    me = calls.caller()
    my_roles = list(me.get("roles", []))
    definition = _definition(file)
    assigning = may_assign(file, my_roles)
    colleagues = _colleagues(str(file["waits_on"])) if assigning == "anyone" else []
    if assigning == "anyone" and not colleagues:  # nobody to list: take it, if one may
        assigning = "self" if file.get("waits_on") in my_roles else None
    names = {person.get("user_id"): person.get("display_name") for person in colleagues}
    assigned_name = names.get(file.get("assigned_to")) or assigned_to_words(
        file.get("assigned_to"), me.get("user_id")
    )
    page = render_template(
        "official_file.html",
        file=file,
        service_name=local(definition.get("name")) or file.get("service_code"),
        state=files_text.state_label(definition, str(file.get("state", ""))),
        answers=answers(file, definition),
        documents=documents(file, definition),
        timeline=files_text.timeline(file, definition, for_applicant=False),
        decisions=decisions(file, definition, my_roles),
        assigning=assigning,
        colleagues=colleagues,
        assigned_name=assigned_name,
        caller_id=me.get("user_id"),
        errors=errors or PageErrors(),
        **extra,
    )
    return page, status


def _assigned_notice(file: Mapping[str, Any], official_id: str) -> str:
    if official_id == calls.caller().get("user_id"):
        return i18n.gettext(TAKEN)
    names = {
        person.get("user_id"): person.get("display_name")
        for person in _colleagues(str(file.get("waits_on", "")))
    }
    return i18n.gettext(ASSIGNED, official=names.get(official_id) or official_id)


def register(app: Flask) -> None:
    navigation.offer(app, NavLink("inbox", i18n.N_("Inbox"), OFFICIAL_ROLES))

    @app.get("/inbox")
    def inbox():
        refused = calls.needs_role(*OFFICIAL_ROLES)
        if refused is not None:
            return refused
        filters = InboxFilters.from_args(request.args)
        cursor = request.args.get("cursor", "")
        params = {
            **filters.params(),
            "limit": str(FILES_PER_PAGE),
            **({"cursor": cursor} if cursor else {}),
        }
        reply = calls.as_user("GET", "/inbox", params=params)
        errors = PageErrors() if reply.ok else page_errors(reply)
        me = calls.caller()
        rows = [
            inbox_row(entry, calls.service(str(entry.get("service_code", ""))), me.get("user_id"))
            for entry in (reply.body.get("files") or [] if reply.ok else [])
        ]
        counts = calls.call_as_user("GET", "/inbox/counts")
        listed = calls.call("GET", "/services")
        services = sorted(
            listed.body.get("services", []) if listed.ok else [],
            key=lambda service: local(service.get("name")),
        )
        chosen = calls.service(filters.service) if filters.service else {}
        states = [
            (name, local(spec.get("label")) or name)
            for name, spec in ((chosen.get("workflow") or {}).get("states") or {}).items()
            if not spec.get("final")
        ]
        return render_template(
            "inbox.html",
            rows=rows,
            counts=count_rows(counts.body if counts and counts.ok else {}, me.get("roles", [])),
            services=services,
            states=states,
            filters=filters,
            next_cursor=reply.body.get("next_cursor") if reply.ok else None,
            later_page=bool(cursor),
            errors=errors,
        ), (200 if reply.ok else 400)

    @app.get("/inbox/files/<uuid:file_id>")
    def official_file(file_id):
        refused = calls.needs_role(*OFFICIAL_ROLES)
        if refused is not None:
            return refused
        return _render_file(_read_file(file_id), notice=session.pop("official_notice", None))

    @app.post("/inbox/files/<uuid:file_id>/decision")
    def decide_on_file(file_id):
        refused = calls.needs_role(*OFFICIAL_ROLES)
        if refused is not None:
            return refused
        action = request.form.get("action", "")
        remarks = request.form.get("remarks", "").strip()
        version = request.form.get("version", "")
        if not version.isdigit():
            abort(400)
        errors = PageErrors()
        # Whether the action needs remarks is the workflow's to say (the
        # gateway's problem on "remarks" goes beside the field).
        if not action:
            errors.add(i18n.gettext(CHOOSE_ACTION))
        status = 400
        if not errors:
            sent = calls.as_user(
                "POST",
                f"/files/{file_id}/actions",
                json={"action": action, "remarks": remarks or None},
                headers={"If-Match": f'"{version}"'},
            )
            if sent.ok:
                label = files_text.action_label(_definition(sent.body), action)
                session["official_notice"] = i18n.gettext(DECIDED, action=label)
                return redirect(url_for("official_file", file_id=file_id), code=303)
            if sent.status in (403, 404):
                abort(404)
            status = sent.status
            errors = page_errors(sent, ACTION_FIELDS)
        file = _read_file(file_id)
        stale = status in (409, 412) and file.get("version") != int(version)
        if stale:
            me = calls.caller().get("user_id")
            errors = PageErrors()
            if acted_twice(file, int(version), action, me):
                return _render_file(file, notice=i18n.gettext(ALREADY_DONE))
            errors.add(i18n.gettext(STALE))
        return _render_file(
            file, errors, status, remarks=remarks, chosen_action=action, stale=stale
        )

    @app.post("/inbox/files/<uuid:file_id>/assignment")
    def assign_file(file_id):
        refused = calls.needs_role(*OFFICIAL_ROLES)
        if refused is not None:
            return refused
        official_id = request.form.get("official_id", "")
        errors = PageErrors()
        status = 400
        if not official_id:
            errors.add(i18n.gettext(CHOOSE_OFFICIAL), "official_id")
        else:
            sent = calls.as_user(
                "POST", f"/files/{file_id}/assignment", json={"official_id": official_id}
            )
            if sent.ok:
                session["official_notice"] = _assigned_notice(sent.body, official_id)
                return redirect(url_for("official_file", file_id=file_id), code=303)
            if sent.status == 404:
                abort(404)
            status = sent.status
            errors = page_errors(sent, ASSIGN_FIELDS)
        file = _read_file(file_id)
        return _render_file(file, errors, status)

    @app.get("/inbox/files/<uuid:file_id>/documents/<code>")
    def view_document(file_id, code: str):
        """A document of the file, fetched with the session's token and
        shown in the browser (inline) as what it really is: a PDF or an
        image, never a type the browser might run."""
        refused = calls.needs_role(*OFFICIAL_ROLES)
        if refused is not None:
            return refused
        if not DOCUMENT_CODE.match(code):
            abort(404)
        path = f"/files/{file_id}/documents/{code}"
        accept = ", ".join(VIEWABLE_TYPES)
        document = calls.download_as_user(path, accept=accept)
        if document is None or document.status == 401:
            return calls.to_sign_in()
        media_type = document.content_type.split(";")[0].strip()
        if not document.ok or media_type not in VIEWABLE_TYPES:
            abort(404)
        filename = f"{code}.{VIEWABLE_TYPES[media_type]}"
        return Response(
            document.content,
            mimetype=media_type,
            headers={
                "Content-Disposition": f'inline; filename="{filename}"',
                "Content-Security-Policy": security.DOCUMENT_CONTENT_SECURITY_POLICY,
            },
        )
