"""How a file reads on a page: its state in the words of its service's
definition, who has it now, what is asked of the applicant, the dates in
Kerala's time and the page's language, and its timeline in plain words.
Pure functions of what the gateway answered (a file, a service's
definition), so each is tested alone."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime

from ksmart_portal.catalogue_text import local
from ksmart_portal.i18n import N_, current_language, gettext

KERALA = ZoneInfo("Asia/Kolkata")
BABEL_LOCALES = {"en": "en_IN", "ml": "ml"}
APPLICANT = "applicant"
RESUBMIT = "resubmit"

ROLE_NAMES = {
    APPLICANT: N_("The applicant"),
    "clerk": N_("Clerk"),
    "overseer": N_("Overseer"),
    "assistant_engineer": N_("Assistant engineer"),
    "health_inspector": N_("Health inspector"),
    "revenue_inspector": N_("Revenue inspector"),
    "section_officer": N_("Section officer"),
    "secretary": N_("Secretary"),
    # Counter staff who filed in a citizen's name (a clerk is named above).
    "akshaya_operator": N_("Akshaya centre operator"),
    "system": N_("K-Smart"),
    "payment_provider": N_("The payment service"),
}
# Timeline actions that are no action of a service's workflow.
PLATFORM_ACTIONS = {
    "submit": N_("Application submitted"),
    "attach_document": N_("Document attached"),
    "pay_fee": N_("Fee paid"),
    "assign": N_("Given to an official"),
    "escalate": N_("Sent to a senior official: its time ran out"),
    "issue_certificate": N_("Certificate issued"),
}


def _moment(timestamp: str | None) -> datetime | None:
    if not timestamp:
        return None
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(KERALA) if moment.tzinfo else moment.replace(tzinfo=KERALA)


def day(timestamp: str | None) -> str:
    """`7 December 2026` (or in Malayalam), in Kerala's time; "" for none."""
    moment = _moment(timestamp)
    if moment is None:
        return ""
    return format_date(moment.date(), "long", locale=BABEL_LOCALES[current_language()])


def day_and_time(timestamp: str | None) -> str:
    moment = _moment(timestamp)
    if moment is None:
        return ""
    pattern = "d MMMM y, h:mm a" if current_language() == "en" else "y MMMM d, h:mm a"
    return format_datetime(moment, pattern, locale=BABEL_LOCALES[current_language()])


def role_name(role: str | None) -> str:
    if not role:
        return ""
    return gettext(ROLE_NAMES[role]) if role in ROLE_NAMES else role.replace("_", " ")


def _workflow(service: Mapping[str, Any]) -> Mapping[str, Any]:
    workflow = service.get("workflow")
    return workflow if isinstance(workflow, Mapping) else {}


def state_label(service: Mapping[str, Any], state: str) -> str:
    """The state as the service's definition names it, in the page's language."""
    found = _workflow(service).get("states", {}).get(state)
    if isinstance(found, Mapping) and found.get("label"):
        return local(found["label"])
    return state.replace("_", " ")


def outcome(service: Mapping[str, Any], state: str) -> str | None:
    """granted, refused or closed for a final state; None while it is open."""
    found = _workflow(service).get("states", {}).get(state)
    return found.get("outcome") if isinstance(found, Mapping) else None


def action_label(service: Mapping[str, Any], action: str) -> str:
    for known in _workflow(service).get("actions", []):
        if isinstance(known, Mapping) and known.get("name") == action and known.get("label"):
            return local(known["label"])
    if action in PLATFORM_ACTIONS:
        return gettext(PLATFORM_ACTIONS[action])
    return action.replace("_", " ")


def needed_from_applicant(entry: Mapping[str, Any], service: Mapping[str, Any]) -> str:
    """What "My files" says is needed from the citizen, in a sentence."""
    if entry.get("needs_applicant") or entry.get("waits_on") == APPLICANT:
        return gettext("The office has asked you something. Open the file to answer.")
    if outcome(service, str(entry.get("state"))) or not entry.get("waits_on"):
        return gettext("Nothing. A decision has been made.")
    return gettext("Nothing for now. The office is working on it.")


def listed(entry: Mapping[str, Any], service: Mapping[str, Any]) -> dict[str, Any]:
    """One row of "My files"."""
    return {
        "file_id": entry.get("file_id"),
        "file_number": entry.get("file_number"),
        "service_name": local(service.get("name")) or str(entry.get("service_code", "")),
        "state": state_label(service, str(entry.get("state", ""))),
        "needed": needed_from_applicant(entry, service),
        "needs_applicant": bool(entry.get("needs_applicant")),
        "due": day(entry.get("state_due_at")),
        "submitted": day(entry.get("submitted_at")),
    }


def next_step(file: Mapping[str, Any], service: Mapping[str, Any]) -> str:
    """The file page's "What happens next", in a sentence."""
    ended = outcome(service, str(file.get("state")))
    if ended == "granted":
        if file.get("certificate"):
            return gettext("Your application was approved. Download your certificate below.")
        if _workflow(service) and not service.get("certificate"):
            return gettext("Your application was approved.")
        return gettext(
            "Your application was approved. Your certificate is being prepared: "
            "look again in a few minutes."
        )
    if ended == "refused":
        return gettext("Your application was refused. The timeline shows the office's reasons.")
    if ended:
        return gettext("This file is closed.")
    if file.get("waits_on") == APPLICANT:
        return gettext("The office needs an answer from you before it can go on.")
    return gettext(
        "The office is working on it. We will send you a message when something changes."
    )


def timeline(
    file: Mapping[str, Any], service: Mapping[str, Any], for_applicant: bool = True
) -> list[dict[str, str]]:
    """The file's history, newest first, in plain words: the applicant's
    steps are "You" on their own pages, "The applicant" on an official's."""
    entries = []
    for entry in reversed(file.get("timeline") or []):
        role = entry.get("role")
        entries.append(
            {
                "what": action_label(service, str(entry.get("action", ""))),
                "who": gettext("You") if role == APPLICANT and for_applicant else role_name(role),
                "remarks": entry.get("remarks") or "",
                "when": day_and_time(entry.get("at")),
                "state": state_label(service, str(entry.get("to_state", ""))),
            }
        )
    return entries


def may_answer(file: Mapping[str, Any]) -> bool:
    """The applicant may answer the office's question now."""
    return file.get("waits_on") == APPLICANT and RESUBMIT in (file.get("allowed_actions") or [])


def tracked(
    answer: Mapping[str, Any], service: Mapping[str, Any], office: Mapping[str, Any]
) -> dict[str, Any]:
    """What anyone holding a file's number learns: nothing about a person."""
    state = str(answer.get("state", ""))
    waits_on = answer.get("waits_on")
    if outcome(service, state) or not waits_on:
        with_whom = gettext("Nobody: it has been decided.")
    elif waits_on == APPLICANT:
        with_whom = gettext("The applicant: the office has asked them something.")
    else:
        with_whom = role_name(waits_on)
    return {
        "file_number": answer.get("file_number"),
        "service_name": local(service.get("name")) or str(answer.get("service_code", "")),
        "office": local(office.get("name")) or str(answer.get("local_body", "")),
        "state": state_label(service, state),
        "with_whom": with_whom,
        "due": day(answer.get("state_due_at")),
        "overdue": bool(answer.get("overdue")),
        "updated": day(answer.get("updated_at")),
    }


FILTERS = {"day": day, "day_and_time": day_and_time, "role_name": role_name}
