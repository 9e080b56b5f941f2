"""The auditor's pages: a file found by its number, its events with their
hash chain verified here, in the portal (chain_check), and its export to
verify offline with the auditor's own tool."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Flask, Response, abort, redirect, render_template, request, url_for

from ksmart_common.domain.file import FILE_NUMBER_KEY
from ksmart_common.domain.roles import AUDITOR
from ksmart_common.domain.vocabulary import is_file_number
from ksmart_portal import calls, chain_check, files_text, i18n, navigation, staff_text
from ksmart_portal.gateway import Reply
from ksmart_portal.navigation import NavLink
from ksmart_portal.problems import PageErrors, page_errors
from ksmart_portal.public_pages import NO_SUCH_FILE

# -- the auditor's words -----------------------------------------------------------

FIND_FILE_HINT = i18n.N_(
    "A file's number, like KL-EKM-KOC/BR/2026/000123, or its ID, like "
    "3f6c1a52-8a39-4c1e-9d3e-2b7f0f0b6a11."
)
FIND_FILE_NEEDED = i18n.N_("Enter a file's number or its ID.")
CHAIN_PROBLEMS = {
    chain_check.NOT_AN_EVENT: i18n.N_(
        "This is not a well-formed event record, so it cannot be checked."
    ),
    chain_check.OTHER_FILE: i18n.N_("This event belongs to another file."),
    chain_check.OUT_OF_SEQUENCE: i18n.N_(
        "It is numbered %(found)s where %(expected)s should come: an event is missing, "
        "or the events are out of order."
    ),
    chain_check.OUT_OF_ORDER: i18n.N_(
        "Its place in the platform's log is not after the event before it: "
        "the events are out of order."
    ),
    chain_check.UNLINKED: i18n.N_(
        "It does not link to the event before it: the previous hash it names is not "
        "that event's hash (for the first event: not 64 zeros)."
    ),
    chain_check.ALTERED: i18n.N_(
        "Its content no longer gives the hash stored with it: the event was changed "
        "after it was recorded."
    ),
    chain_check.NOT_CANONICAL: i18n.N_(
        "Its stored text is not written in the one canonical form, or the fields "
        "shown with it differ from that text: the record was rewritten after it was "
        "recorded."
    ),
}
EXPORT_NAME = "file-{file_id}-events.jsonl"
VERIFY_COMMAND = "ksmart-audit verify --file {file_id} --input {export}"
# Each page is the auditor's alone: checked before any of them runs.
AUDITOR_PAGES = ("audit_search", "audit_file", "audit_export")


def register(app: Flask) -> None:
    navigation.offer(app, NavLink("audit_search", i18n.N_("Audit"), (AUDITOR,)))
    _register_audit(app)

    @app.before_request
    def only_for_auditors():
        if request.endpoint in AUDITOR_PAGES:
            return calls.needs_role(AUDITOR)
        return None


def _register_audit(app: Flask) -> None:
    @app.get("/audit")
    def audit_search():
        wanted = request.args.get("file", "").strip()
        errors = PageErrors()
        if "file" in request.args:
            found = _file_id_of(wanted, errors)
            if found:
                return redirect(url_for("audit_file", file_id=found), code=303)
        status = 400 if errors else 200
        return render_template("audit_search.html", wanted=wanted, errors=errors), status

    @app.get("/audit/files/<uuid:file_id>")
    def audit_file(file_id):
        reply = _file_events(file_id)
        checked = chain_check.check_chain(str(file_id), reply.body.get("events") or [])
        export = EXPORT_NAME.format(file_id=file_id)
        return render_template(
            "audit_file.html",
            file_id=str(file_id),
            file_number=_file_number(checked),
            checked=checked,
            platform_says=reply.body.get("verified"),
            events=[
                {**_event_row(event), "anchor": f"event-{number}"}
                for number, event in enumerate(checked.events, start=1)
            ],
            export=export,
            verify_command=VERIFY_COMMAND.format(file_id=file_id, export=export),
        )

    @app.get("/audit/files/<uuid:file_id>/export")
    def audit_export(file_id):
        """The file's events as JSON lines, as `ksmart-audit export` writes
        them, fetched with the session's token: it never reaches the browser."""
        reply = _file_events(file_id)
        export = EXPORT_NAME.format(file_id=file_id)
        return Response(
            _json_lines(reply.body.get("events") or []),
            mimetype="application/x-ndjson",
            headers={
                "Content-Disposition": f'attachment; filename="{export}"',
                "Cache-Control": "no-store",
            },
        )


def _file_id_of(wanted: str, errors: PageErrors) -> str:
    """The id of the file the auditor asked for, by its id or its number;
    "" with the reason in `errors`."""
    if not wanted:
        errors.add(i18n.gettext(FIND_FILE_NEEDED), "file")
        return ""
    try:
        return str(uuid.UUID(wanted))
    except ValueError:
        pass
    if not is_file_number(wanted):
        errors.add(i18n.gettext(FIND_FILE_HINT), "file")
        return ""
    reply = calls.as_user("GET", "/audit/files", params={"number": wanted})
    if reply.ok:
        return str(reply.body["file_id"])
    if reply.status == 404:
        errors.add(i18n.gettext(NO_SUCH_FILE), "file")
    else:
        errors.errors.extend(page_errors(reply).errors)
    return ""


def _file_events(file_id) -> Reply:
    """The file's events as the gateway serves them (404 for a file it
    does not know)."""
    reply = calls.as_user("GET", f"/audit/files/{file_id}/events")
    if not reply.ok:
        abort(404)
    return reply


def _file_number(checked: chain_check.ChainCheck) -> str | None:
    """The number the file was given, as its first event recorded it."""
    if not checked.events:
        return None
    data = checked.events[0].document.get("data")
    return data.get(FILE_NUMBER_KEY) if isinstance(data, Mapping) else None


def _event_row(event: chain_check.EventCheck) -> dict[str, Any]:
    document = event.document
    metadata = document.get("metadata") if isinstance(document.get("metadata"), Mapping) else {}
    roles = metadata.get("actor_roles") or []
    return {
        "version": document.get("stream_version"),
        "event_type": document.get("event_type"),
        "position": document.get("global_position"),
        "recorded": files_text.day_and_time(document.get("recorded_at")),
        "actor": ", ".join(staff_text.role_name(str(role)) for role in roles),
        "prev_hash": document.get("prev_hash"),
        "hash": document.get("hash"),
        "recomputed_hash": event.recomputed_hash,
        "verified": event.verified,
        "problems": [
            i18n.gettext(
                CHAIN_PROBLEMS[problem],
                found=document.get("stream_version"),
                expected=event.expected_version,
            )
            if problem == chain_check.OUT_OF_SEQUENCE
            else i18n.gettext(CHAIN_PROBLEMS[problem])
            for problem in event.problems
        ],
    }


def _json_lines(documents: list[Any]) -> Iterator[bytes]:
    for document in documents:
        yield json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
