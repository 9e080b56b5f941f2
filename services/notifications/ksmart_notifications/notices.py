"""What a citizen is told about their file, decided from one event and the
file as it stood right after it (projected with the shared projector, by
`file_states`, so the answer is the same however late or often the event
arrives).

A notice names its template and carries values that do not depend on the
language yet (bilingual names, moments, amounts); `params` turns them into
the texts a template takes, in the citizen's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ksmart_common.domain.file import (
    APPLICATION_SUBMITTED,
    CERTIFICATE_ISSUED,
    FEE_PAID,
    FILE_ESCALATED,
    FileState,
)
from ksmart_common.domain.workflow import APPLICANT, CLOSED, GRANTED, REFUSED
from ksmart_common.envelope import Envelope
from ksmart_notifications import rendering

# The office's dates are Kerala's, wherever the citizen reads them.
OFFICE_TIME_ZONE = "Asia/Kolkata"
# The one state that asks the applicant for money rather than an answer
# (a test of the catalogue keeps every applicant state one of these two).
FEE_DEMAND_STATE = "fee_demanded"
CLARIFICATION_STATE = "clarification_requested"
DECISIONS = {
    GRANTED: "application_approved",
    REFUSED: "application_refused",
    CLOSED: "file_closed",
}


@dataclass(frozen=True)
class Money:
    paise: int


@dataclass(frozen=True)
class Role:
    name: str


@dataclass(frozen=True)
class Notice:
    template: str
    file_id: str
    file_number: str | None
    recipient_id: str
    # Values by template parameter: a str, a {"en", "ml"} mapping, a
    # datetime (shown as an office date), Money or Role.
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Names:
    """What the events do not carry: the service's and the local body's names."""

    service: Mapping[str, str]
    local_body: Mapping[str, str]


_NOTICED = (APPLICATION_SUBMITTED, FEE_PAID, CERTIFICATE_ISSUED, FILE_ESCALATED)


def may_notify(envelope: Envelope) -> bool:
    """Cheap: whether the event can give a notice at all (the rest, such as
    assignments, are skipped without reading the file)."""
    return envelope.event_type in _NOTICED or "to_state" in envelope.data


def notice_for(envelope: Envelope, file: FileState, names: Names) -> Notice | None:
    """The notice an event gives the applicant, if any. `file` is the file
    as it stood right after the event."""
    kind = envelope.event_type
    base = {"service_name": names.service, "file_number": file.file_number or file.file_id}
    if kind == APPLICATION_SUBMITTED:
        values = {**base, "local_body_name": names.local_body, "due_date": file.file_due_at}
        if file.fee_due_paise:
            return _notice("application_received_fee_due", file, values, Money(file.fee_due_paise))
        return _notice("application_received", file, values)
    if kind == FEE_PAID:
        return _notice(
            "payment_received", file, {**base, "amount": Money(envelope.data["amount_paise"])}
        )
    if kind == CERTIFICATE_ISSUED:
        certificate = envelope.data["certificate"]["payload"]
        return _notice(
            "certificate_ready",
            file,
            {
                "file_number": base["file_number"],
                "certificate_title": certificate["title"],
                "certificate_number": certificate["certificate_number"],
            },
        )
    if kind == FILE_ESCALATED:
        return _notice("file_escalated", file, {**base, "to_role": Role(envelope.data["to_role"])})
    if "to_state" not in envelope.data:
        return None  # an assignment, a document added: nothing for the citizen
    if envelope.metadata.get("actor_id") == file.applicant_id:
        return None  # the citizen's own step: they know
    return _movement_notice(envelope, file, base)


def _movement_notice(envelope: Envelope, file: FileState, base: dict) -> Notice:
    machine = file.machine
    state = machine.states[envelope.data["to_state"]]
    remarks = envelope.data.get("remarks") or None
    if state.final:
        template = DECISIONS.get(state.outcome or "", "file_closed")
        return _notice(template, file, {**base, "remarks": remarks})
    if state.waits_on == APPLICANT:
        if state.name == FEE_DEMAND_STATE and file.fee_due_paise:
            values = {**base, "remarks": remarks, "amount": Money(file.fee_due_paise)}
            return _notice("fee_demanded", file, values)
        reply_by = envelope.recorded_at + timedelta(days=state.sla_days or 0)
        return _notice(
            "clarification_requested",
            file,
            {**base, "remarks": remarks, "reply_by": reply_by if state.sla_days else None},
        )
    label = file.workflow["states"][state.name].get("label") or {"en": state.name, "ml": state.name}
    return _notice("file_progress", file, {**base, "state_label": label})


def _notice(template: str, file: FileState, values: dict, amount: Money | None = None) -> Notice:
    if amount is not None:
        values = {**values, "amount": amount}
    return Notice(template, file.file_id, file.file_number, file.applicant_id, values)


def params(notice: Notice, language: str) -> dict[str, str]:
    """The template's parameters as texts in `language`."""
    return {name: _text(value, language) for name, value in notice.values.items()}


def _text(value: Any, language: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return rendering.format_date(value, language, OFFICE_TIME_ZONE)
    if isinstance(value, Money):
        return rendering.format_rupees(value.paise, language)
    if isinstance(value, Role):
        return rendering.role_label(value.name, language)
    if isinstance(value, Mapping):
        return str(value.get(language) or value.get("en") or "")
    return str(value)
