"""A file (one application) as events: decide what a command means, and
project events into the file's state.

`project(state, envelope) -> state` is THE projector: the applications service
rebuilds a file with it before deciding, the workflow service's live consumer
and its rebuild use it, and so does the auditor's replay. It is pure: same
events in, same state out.

The first event, ApplicationSubmitted, carries the catalogue definition's
content hash, version and workflow section, so a file is always replayed
against the workflow it was filed under, never against today's catalogue.
It also carries the file's number, the documents filed with it and the fee
demanded; DocumentAttached and FeePaid add to those later. A file counter
staff filed in a citizen's name also carries `filed_by`: who filed it, in
which counter role, at which office, and the citizen's consent; its
metadata's actor is the filer, its `applicant_id` the citizen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from ksmart_common.domain import certificate, intake
from ksmart_common.domain.intake import Upload
from ksmart_common.domain.roles import AUDITOR as AUDITOR_ROLE
from ksmart_common.domain.roles import CITIZEN as CITIZEN_ROLE
from ksmart_common.domain.roles import CLERK, counter_role
from ksmart_common.domain.vocabulary import DEFAULT_LANGUAGE
from ksmart_common.domain.workflow import APPLICANT, Workflow
from ksmart_common.envelope import Envelope, NewEvent, format_timestamp
from ksmart_common.errors import ActionNotAllowed, Forbidden, InvalidInput, NotFound

APPLICATION_SUBMITTED = "ApplicationSubmitted"
DOCUMENT_ATTACHED = "DocumentAttached"
FEE_PAID = "FeePaid"
FILE_ASSIGNED = "FileAssigned"
CERTIFICATE_ISSUED = "CertificateIssued"
ISSUE_ACTION = "issue_certificate"
FILE_ESCALATED = "FileEscalated"
ASSIGN_ACTION = "assign"
ESCALATE_ACTION = "escalate"
# Who may hand a file to a named official: those who run a section or the
# office. An official holding the role the file waits on may take it himself.
SUPERVISOR_ROLES = ("section_officer", "secretary")
# An overdue file goes up to the local body's chief officer, unless it
# already waits on them (or on the applicant, whose time is not the office's).
ESCALATION_ROLE = "secretary"
SYSTEM = "system"
SUBMIT_ACTION = "submit"
ATTACH_ACTION = "attach_document"
PAY_ACTION = "pay_fee"
# The key of ApplicationSubmitted's data that the event store fills with the
# file's number, assigned without gaps in the appending transaction.
FILE_NUMBER_KEY = "file_number"
NO_FEE = {"items": [], "total_paise": 0}
# Who records a payment: the provider, as its signed callback proves.
PAYMENT_PROVIDER = "payment_provider"


@dataclass(frozen=True)
class Actor:
    """Who is acting: from the verified token, never from the request body."""

    actor_id: str
    roles: tuple[str, ...]
    local_body: str | None = None
    wards: tuple[int, ...] = ()


@dataclass(frozen=True)
class FileState:
    file_id: str
    stream_id: str
    service_code: str
    definition_version: int
    definition_hash: str
    workflow: Mapping[str, Any]
    local_body: str
    applicant_id: str
    form: Mapping[str, Any]
    state: str
    waits_on: str | None
    version: int
    submitted_at: str
    updated_at: str
    timeline: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)
    file_number: str | None = None
    # document code -> the upload filed for it (the latest, if replaced)
    documents: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    fee_demand: Mapping[str, Any] = field(default_factory=lambda: NO_FEE)
    # payment ids already counted, so a provider's repeated callback is not
    # counted twice
    payments: tuple[str, ...] = field(default_factory=tuple)
    paid_paise: int = 0
    # Time limits: the service's days for the whole file (pinned at
    # submission; None for files filed before it was), when the file entered
    # its state, and how long it has waited on the applicant (not the
    # office's time, so it extends the file's due time).
    sla_days: int | None = None
    state_entered_at: str | None = None
    paused_seconds: float = 0.0
    # While the file waits on the applicant: what was asked, and the state
    # it returns to when they answer.
    clarification: Mapping[str, Any] | None = None
    returned_from: str | None = None
    # How much of the returned-from state's time the office had used when
    # it asked: its clock resumes from there, it does not start again.
    office_seconds_used: float = 0.0
    assigned_to: str | None = None
    escalated: bool = False
    # When the file reached a final state (granted, refused or closed).
    decided_at: str | None = None
    # The signed certificate a granted file yields, if its service gives one.
    certificate: Mapping[str, Any] | None = None
    # Counter staff who filed it in the applicant's name (actor_id, role,
    # office, consent_id); None when the applicant filed it themselves.
    filed_by: Mapping[str, Any] | None = None

    @property
    def fee_due_paise(self) -> int:
        return max(0, self.fee_demand["total_paise"] - self.paid_paise)

    @property
    def state_due_at(self) -> datetime | None:
        """When the current state's time limit runs out; None in a final
        state, or while the file waits on the applicant."""
        spec = self.machine.states[self.state]
        if spec.final or self.waits_on == APPLICANT or not spec.sla_days:
            return None
        entered = _parse(self.state_entered_at or self.submitted_at)
        return entered + timedelta(days=spec.sla_days)

    @property
    def file_due_at(self) -> datetime | None:
        """When the service's time limit for the whole file runs out, the
        applicant's time excluded; None if the file was filed without one,
        or while it waits on the applicant (the clock is stopped)."""
        if self.sla_days is None or self.waits_on == APPLICANT:
            return None
        return (
            _parse(self.submitted_at)
            + timedelta(days=self.sla_days)
            + timedelta(seconds=self.paused_seconds)
        )

    def is_overdue(self, now: datetime) -> bool:
        """Past the current state's time limit (the one escalation acts on)."""
        due = self.state_due_at
        return due is not None and now > due

    @property
    def refund_due_paise(self) -> int:
        """Paid beyond the demand (a payment made twice): owed back."""
        return max(0, self.paid_paise - self.fee_demand["total_paise"])

    @property
    def machine(self) -> Workflow:
        return _workflow(self.definition_hash, self.workflow)

    @property
    def is_final(self) -> bool:
        return self.machine.is_final(self.state)

    def allowed_actions(self) -> list[str]:
        """The actions the state offers now: a grant waits for the fee."""
        machine = self.machine
        return [
            action.name
            for action in machine.actions_from(self.state)
            if not (self.fee_due_paise and machine.grants(action))
        ]

    def view(self) -> dict[str, Any]:
        """What a reader of the file is shown: everything but the pinned
        workflow itself, plus the actions its state offers now."""
        document = self.to_dict()
        del document["workflow"]
        document["allowed_actions"] = self.allowed_actions()
        document["fee_due_paise"] = self.fee_due_paise
        document["refund_due_paise"] = self.refund_due_paise
        document["state_due_at"] = _format(self.state_due_at)
        document["file_due_at"] = _format(self.file_due_at)
        return document

    def to_dict(self) -> dict[str, Any]:
        """A shallow dict: its nested values are the state's own, to be
        serialised, not changed. (dataclasses.asdict would deep-copy the
        pinned workflow for every file.)"""
        document = {field.name: getattr(self, field.name) for field in fields(self)}
        document["timeline"] = list(self.timeline)
        document["payments"] = list(self.payments)
        return document

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> FileState:
        return cls(
            **{
                **document,
                "timeline": tuple(document["timeline"]),
                "payments": tuple(document.get("payments", ())),
            }
        )


_MACHINES: dict[str, tuple[Mapping[str, Any], Workflow]] = {}
MAX_CACHED_MACHINES = 1024


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def _format(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment is not None else None


def _workflow(definition_hash: str, workflow: Mapping[str, Any]) -> Workflow:
    """The state machine of a pinned workflow, parsed once per definition.

    Keyed on the definition's hash, but a hit is used only for the very same
    workflow (the same object, as while one file is replayed, or an equal
    one): a cache must never hand one file another's workflow, even if an
    event lied about its hash."""
    cached = _MACHINES.get(definition_hash)
    if cached is not None and (cached[0] is workflow or cached[0] == workflow):
        return cached[1]
    machine = Workflow.from_definition(workflow)
    if len(_MACHINES) >= MAX_CACHED_MACHINES:
        _MACHINES.pop(next(iter(_MACHINES)))
    _MACHINES[definition_hash] = (workflow, machine)
    return machine


# -- deciding ---------------------------------------------------------------


def submit_application(
    file_id: str,
    definition: Mapping[str, Any],
    local_body: str,
    applicant: Actor,
    form: Mapping[str, Any],
    documents: Mapping[str, Upload | None] | None = None,
    lang: str = DEFAULT_LANGUAGE,
    directory_entry: Mapping[str, Any] | None | bool = False,
    filed_by: Mapping[str, Any] | None = None,
) -> list[NewEvent]:
    """The events of a new application, or InvalidInput naming every problem
    of it at once, in `lang`. The event store adds the file number.

    directory_entry: the local-body directory's entry for `local_body`
    (None if it has none); left out (False), the body is not checked.
    filed_by: counter staff filing in the applicant's name (their
    actor_id, counter role, office and the citizen's consent id), recorded
    in the event; None when the applicant files themselves."""
    if CITIZEN_ROLE not in applicant.roles:
        raise Forbidden("only a citizen may file an application")
    problems = application_problems(definition, local_body, form, documents, lang, directory_entry)
    if problems:
        raise InvalidInput(incomplete(len(problems), lang), problems)
    Workflow.from_definition(definition["workflow"])  # refuse a broken definition early
    documents = documents or {}
    return [
        NewEvent(
            APPLICATION_SUBMITTED,
            {
                "file_id": file_id,
                "service": {
                    "code": definition["code"],
                    "version": definition["version"],
                    "content_hash": definition["content_hash"],
                    "workflow": definition["workflow"],
                    "sla_days": definition["sla_days"],
                },
                "local_body": local_body,
                "applicant_id": applicant.actor_id,
                "form": dict(form),
                "documents": {
                    code: upload.to_dict() for code, upload in documents.items() if upload
                },
                "fee_demand": intake.fee_demand(definition, form),
                # Only on a counter's filing, so a citizen's own is as it always was.
                **({"filed_by": dict(filed_by)} if filed_by is not None else {}),
            },
        )
    ]


def application_problems(
    definition: Mapping[str, Any],
    local_body: str,
    form: Mapping[str, Any],
    documents: Mapping[str, Upload | None] | None,
    lang: str = DEFAULT_LANGUAGE,
    directory_entry: Mapping[str, Any] | None | bool = False,
) -> list[dict[str, str]]:
    """Every problem of an application (submit_application's check), so a
    counter can learn them together with its consent's before filing."""
    checked = directory_entry is not False
    return intake.application_problems(
        definition,
        form,
        documents or {},
        lang,
        local_body=directory_entry if checked else None,
        local_body_code=local_body if checked else None,
    )


def check_counter_filing(filer: Actor, local_body: str) -> str:
    """The counter role `filer` files for a citizen in, to `local_body`:
    an Akshaya operator files to any body, a clerk (the front office) to
    their own body only. Forbidden otherwise."""
    role = counter_role(filer.roles)
    if role is None:
        raise Forbidden("only counter staff file applications for citizens")
    if role == CLERK and filer.local_body != local_body:
        raise Forbidden(
            f"a clerk files for citizens to their own local body ({filer.local_body}) only"
        )
    return role


def incomplete(count: int, lang: str) -> str:
    if lang == "ml":
        return f"അപേക്ഷയിൽ {count} പ്രശ്നങ്ങളുണ്ട്; എല്ലാം താഴെ കൊടുത്തിരിക്കുന്നു"
    noun = "problem" if count == 1 else "problems"
    return f"the application has {count} {noun}; all are listed"


def attach_document(
    state: FileState,
    definition: Mapping[str, Any],
    code: str,
    upload: Upload | None,
    actor: Actor,
    lang: str = DEFAULT_LANGUAGE,
) -> list[NewEvent]:
    """The applicant adds (or replaces) a document while the file waits on
    them (a clarification asked for it), checked against the definition the
    file was filed under. Never while officials hold the file: what they
    verified must be what is decided on."""
    if actor.actor_id != state.applicant_id or CITIZEN_ROLE not in actor.roles:
        raise Forbidden("only the applicant may attach documents to the file")
    if state.waits_on != APPLICANT:
        raise ActionNotAllowed(
            f"the file is {state.state!r}: documents are added when a clarification asks",
            [{"field": "file", "message": "the file is with the office, not with you"}],
        )
    spec = next((doc for doc in definition["documents"] if doc["code"] == code), None)
    if spec is not None and not intake.applies(spec, state.form):
        problems = [
            {
                "field": f"documents.{code}",
                "code": "document_not_applicable",
                "message": intake.message("document_not_applicable", lang, spec["label"]),
            }
        ]
    elif spec is None:
        problems = [
            {
                "field": f"documents.{code}",
                "code": "document_unknown",
                "message": f"{code}: {intake.message('document_unknown', lang)}",
            }
        ]
    else:
        problems = intake.upload_problems(spec, upload, lang)
    if problems:
        raise InvalidInput(incomplete(len(problems), lang), problems)
    return [
        NewEvent(
            DOCUMENT_ATTACHED,
            {"code": code, "document": upload.to_dict(), "replaces": state.documents.get(code)},
        )
    ]


def record_payment(
    state: FileState, payment_id: str, provider: str, amount_paise: int
) -> list[NewEvent]:
    """FeePaid for a payment the provider captured; nothing for one already
    counted (providers repeat their callbacks). Money taken is always
    recorded, even more than is due (a second payment): the excess shows as
    a refund due, never as a payment refused and lost."""
    if payment_id in state.payments:
        return []
    return [
        NewEvent(
            FEE_PAID,
            {"payment_id": payment_id, "provider": provider, "amount_paise": amount_paise},
        )
    ]


def take_action(
    state: FileState,
    action_name: str,
    actor: Actor,
    remarks: str | None = None,
    answers: Mapping[str, Any] | None = None,
    definition: Mapping[str, Any] | None = None,
    lang: str = DEFAULT_LANGUAGE,
) -> list[NewEvent]:
    """The event of one decision on a file, or the reason it is refused.

    answers: the applicant answering a clarification may correct form
    answers too; the form as it would then be is checked against the
    definition the file was filed under (`definition`), every problem at
    once."""
    machine = state.machine
    action = machine.actions.get(action_name)
    allowed = state.allowed_actions()
    if action is None or state.state not in action.from_states:
        raise ActionNotAllowed(
            f"{action_name!r} is not possible while the file is {state.state!r}",
            [{"field": "action", "message": f"allowed now: {', '.join(allowed) or 'none'}"}],
        )
    role = _acting_role(state, actor)
    if machine.grants(action) and state.fee_due_paise:
        raise ActionNotAllowed(
            f"the fee of ₹{state.fee_due_paise / 100:.2f} is unpaid: the file cannot be decided",
            [{"field": "fee", "message": "the applicant must pay the fee first"}],
        )
    if action.requires_remarks and not (remarks or "").strip():
        raise InvalidInput(
            f"{action_name!r} needs remarks",
            [{"field": "remarks", "message": "say what is needed or why"}],
        )
    changed = _checked_answers(state, answers, definition, lang) if answers else None
    to_state = action.to_state
    # A clarification's answer is an applicant's action that would send the
    # file back to the start: instead it resumes where it was returned from.
    # Not when answers changed: what was checked before must be checked again.
    # (Other applicant steps, such as paying a demanded fee, go where the
    # definition says.)
    if state.returned_from and to_state == machine.initial_state and not changed:
        to_state = state.returned_from
    return [
        NewEvent(
            action.event_type,
            {
                "action": action.name,
                "from_state": state.state,
                "to_state": to_state,
                "remarks": remarks,
                "actor_role": role,
                **({"answers": changed} if changed else {}),
            },
        )
    ]


def _checked_answers(
    state: FileState,
    answers: Mapping[str, Any],
    definition: Mapping[str, Any] | None,
    lang: str,
) -> dict[str, Any]:
    if state.waits_on != APPLICANT or definition is None:
        raise ActionNotAllowed(
            "answers are given only in reply to a clarification",
            [{"field": "answers", "message": "the file is not waiting on you"}],
        )
    form = {**state.form, **answers}
    form = {name: value for name, value in form.items() if value is not None}
    uploads = {
        code: Upload(doc["sha256"], doc["media_type"], doc["size_bytes"], doc.get("filename"))
        for code, doc in state.documents.items()
    }
    problems = intake.application_problems(definition, form, uploads, lang)
    if intake.fee_demand(definition, form) != state.fee_demand:
        # The fee was demanded for the answers as filed.
        problems.append(
            {
                "field": "answers",
                "code": "changes_the_fee",
                "message": "these answers change the fee: file a new application instead",
            }
        )
    if problems:
        raise InvalidInput(incomplete(len(problems), lang), problems)
    return {name: value for name, value in answers.items() if state.form.get(name) != value}


def certificate_event(
    state: FileState,
    action_name: str,
    definition: Mapping[str, Any],
    sign: Callable[[dict[str, Any]], dict[str, Any]],
    kid: str,
    now: datetime,
) -> list[NewEvent]:
    """The certificate a grant yields, when the service gives one: issued
    with the grant, in the same append, so a granted file never lacks it."""
    machine = state.machine
    action = machine.actions.get(action_name)
    if action is None or not machine.grants(action) or not definition.get("certificate"):
        return []
    payload = certificate.build_certificate(state, definition, issued_at=now, kid=kid)
    return [NewEvent(CERTIFICATE_ISSUED, {"certificate": sign(payload)})]


def assign(state: FileState, assignee: Actor, actor: Actor) -> list[NewEvent]:
    """Hand the file to a named official who holds the role it waits on in
    its local body: a supervisor does, or an official takes it himself."""
    if state.is_final or state.waits_on in (APPLICANT, None):
        raise ActionNotAllowed(
            "only a file waiting on an official is assigned",
            [{"field": "official_id", "message": f"the file is {state.state!r}"}],
        )
    if actor.local_body != state.local_body:
        raise NotFound(f"no file {state.file_id}")
    supervises = any(role in SUPERVISOR_ROLES for role in actor.roles)
    takes_it = assignee.actor_id == actor.actor_id and state.waits_on in actor.roles
    if not (supervises or takes_it):
        raise Forbidden("a section officer or the secretary assigns files; you may take your own")
    if assignee.local_body != state.local_body or state.waits_on not in assignee.roles:
        raise InvalidInput(
            "the file cannot go to that official",
            [
                {
                    "field": "official_id",
                    "message": f"must be a {state.waits_on} of {state.local_body}",
                }
            ],
        )
    return [
        NewEvent(
            FILE_ASSIGNED,
            {
                "official_id": assignee.actor_id,
                "state": state.state,
                "by_role": next((r for r in actor.roles if r in SUPERVISOR_ROLES), state.waits_on),
            },
        )
    ]


def escalate(state: FileState, now: datetime) -> list[NewEvent]:
    """What an overrun of the state's time limit does, as the definition
    says: the file goes up to another role, or an action is taken on the
    office's behalf; by default it goes up to the secretary. Decided by the
    workflow service's timer, stored like any other decision. Refused (so a
    second replica's timer stores nothing) unless the file is overdue and
    not yet escalated in this state."""
    due = state.state_due_at
    rule = state.machine.states[state.state].escalation or {"to": ESCALATION_ROLE}
    if (
        due is None
        or now <= due
        or state.escalated
        or state.waits_on in (rule.get("to"), APPLICANT, None)
    ):
        raise ActionNotAllowed(
            "the file is not due for escalation",
            [{"field": "file", "message": f"due {_format(due)}, escalated: {state.escalated}"}],
        )
    if "action" in rule:
        action = state.machine.actions[rule["action"]]
        if state.machine.grants(action) and state.fee_due_paise:
            raise ActionNotAllowed(
                "the fee is unpaid: nothing is granted on the office's behalf",
                [{"field": "fee", "message": "the applicant must pay the fee first"}],
            )
        return [
            NewEvent(
                action.event_type,
                {
                    "action": action.name,
                    "from_state": state.state,
                    "to_state": action.to_state,
                    "remarks": f"the time limit ran out on {_format(due)}",
                    "actor_role": SYSTEM,
                },
            )
        ]
    return [
        NewEvent(
            FILE_ESCALATED,
            {
                "state": state.state,
                "from_role": state.waits_on,
                "to_role": rule["to"],
                "due_at": _format(due),
            },
        )
    ]


def _acting_role(state: FileState, actor: Actor) -> str:
    """The role the actor acts in, or Forbidden: the state says who holds the file."""
    waits_on = state.waits_on
    if waits_on == APPLICANT:
        if actor.actor_id == state.applicant_id and CITIZEN_ROLE in actor.roles:
            return APPLICANT
        raise Forbidden("only the applicant may act on the file now")
    if waits_on not in actor.roles:
        raise Forbidden(f"the file waits on a {waits_on}; you do not hold that role")
    if actor.local_body != state.local_body:
        raise Forbidden("the file belongs to another local body")
    return waits_on


# -- projecting -------------------------------------------------------------


class ProjectionError(ValueError):
    """Events that cannot follow one another (a gap, or a foreign stream)."""


def project(state: FileState | None, envelope: Envelope) -> FileState:
    at = format_timestamp(envelope.recorded_at)
    actor_id = envelope.metadata.get("actor_id")
    if state is None:
        if envelope.event_type != APPLICATION_SUBMITTED or envelope.stream_version != 1:
            raise ProjectionError(f"{envelope.stream_id} must start with {APPLICATION_SUBMITTED}")
        data = envelope.data
        service = data["service"]
        machine = _workflow(service["content_hash"], service["workflow"])
        return FileState(
            file_id=data["file_id"],
            stream_id=envelope.stream_id,
            service_code=service["code"],
            definition_version=service["version"],
            definition_hash=service["content_hash"],
            workflow=service["workflow"],
            local_body=data["local_body"],
            applicant_id=data["applicant_id"],
            form=data["form"],
            file_number=data.get(FILE_NUMBER_KEY),
            documents=data.get("documents", {}),
            fee_demand=data.get("fee_demand", NO_FEE),
            filed_by=data.get("filed_by"),
            sla_days=service.get("sla_days"),
            state_entered_at=at,
            state=machine.initial_state,
            waits_on=machine.waits_on(machine.initial_state),
            version=1,
            submitted_at=at,
            updated_at=at,
            timeline=(
                {
                    "version": 1,
                    "action": SUBMIT_ACTION,
                    "event_type": envelope.event_type,
                    "actor_id": actor_id,
                    # Who filed: the applicant, or counter staff in their name.
                    "role": data["filed_by"]["role"] if data.get("filed_by") else APPLICANT,
                    "remarks": None,
                    "from_state": None,
                    "to_state": machine.initial_state,
                    "at": at,
                },
            ),
        )
    if envelope.stream_id != state.stream_id:
        raise ProjectionError(f"{envelope.stream_id} is not {state.stream_id}")
    if envelope.stream_version != state.version + 1:
        raise ProjectionError(
            f"{state.stream_id}: version {envelope.stream_version} cannot follow {state.version}"
        )
    data = envelope.data
    in_place = _IN_PLACE.get(envelope.event_type)
    if in_place is not None:
        action, role_of, changes = in_place
        entry = _entry(envelope, action, role_of(data), state.state, at)
        return replace(
            state,
            **changes(state, data),
            version=envelope.stream_version,
            updated_at=at,
            timeline=(*state.timeline, entry),
        )
    if "to_state" not in data:
        # An event this projector does not know yet changes no state.
        return replace(state, version=envelope.stream_version, updated_at=at)
    entry = {
        "version": envelope.stream_version,
        "action": data["action"],
        "event_type": envelope.event_type,
        "actor_id": actor_id,
        "role": data.get("actor_role"),
        "remarks": data.get("remarks"),
        "from_state": data["from_state"],
        "to_state": data["to_state"],
        "at": at,
        **({"changed_answers": sorted(data["answers"])} if data.get("answers") else {}),
    }
    waits_on = state.machine.waits_on(data["to_state"])
    form = state.form
    if data.get("answers"):
        form = {**form, **data["answers"]}
        form = {name: value for name, value in form.items() if value is not None}
    paused = state.paused_seconds
    if state.waits_on == APPLICANT:
        entered = _parse(state.state_entered_at or state.submitted_at)
        paused += (envelope.recorded_at - entered).total_seconds()
    asking = waits_on == APPLICANT
    entered_at = at
    used = state.office_seconds_used
    if asking:
        # The office's clock stops: remember how much of the state's time
        # it had used, and take it off again when the file comes back.
        used = (envelope.recorded_at - _parse(state.state_entered_at or at)).total_seconds()
    elif state.waits_on == APPLICANT and data["to_state"] == state.returned_from:
        entered_at = format_timestamp(envelope.recorded_at - timedelta(seconds=used))
    return replace(
        state,
        state=data["to_state"],
        waits_on=waits_on,
        form=form,
        version=envelope.stream_version,
        updated_at=at,
        timeline=(*state.timeline, entry),
        state_entered_at=entered_at,
        office_seconds_used=used if asking else 0.0,
        paused_seconds=paused,
        returned_from=data["from_state"] if asking else None,
        clarification=(
            {"asked": data.get("remarks"), "role": data.get("actor_role"), "at": at}
            if asking
            else None
        ),
        assigned_to=None,
        escalated=False,
        decided_at=at if state.machine.is_final(data["to_state"]) else None,
    )


# Events that leave the file in its state: the timeline action each is
# shown as, who took it (from the event's data), and what it changes.
_IN_PLACE: dict[
    str,
    tuple[
        str,
        Callable[[Mapping[str, Any]], str],
        Callable[[FileState, Mapping[str, Any]], dict[str, Any]],
    ],
] = {
    DOCUMENT_ATTACHED: (
        ATTACH_ACTION,
        lambda data: APPLICANT,
        lambda state, data: {"documents": {**state.documents, data["code"]: data["document"]}},
    ),
    FEE_PAID: (
        PAY_ACTION,
        lambda data: PAYMENT_PROVIDER,
        lambda state, data: {
            "payments": (*state.payments, data["payment_id"]),
            "paid_paise": state.paid_paise + data["amount_paise"],
        },
    ),
    FILE_ASSIGNED: (
        ASSIGN_ACTION,
        lambda data: data["by_role"],
        lambda state, data: {"assigned_to": data["official_id"]},
    ),
    CERTIFICATE_ISSUED: (
        ISSUE_ACTION,
        lambda data: SYSTEM,
        lambda state, data: {"certificate": data["certificate"]},
    ),
    FILE_ESCALATED: (
        ESCALATE_ACTION,
        lambda data: SYSTEM,
        lambda state, data: {"waits_on": data["to_role"], "escalated": True, "assigned_to": None},
    ),
}


def _entry(envelope: Envelope, action: str, role: str, in_state: str, at: str) -> dict:
    """A timeline entry for an event that leaves the file in its state."""
    return {
        "version": envelope.stream_version,
        "action": action,
        "event_type": envelope.event_type,
        "actor_id": envelope.metadata.get("actor_id"),
        "role": role,
        "remarks": None,
        "from_state": in_state,
        "to_state": in_state,
        "at": at,
    }


def replay(envelopes: Iterable[Envelope], state: FileState | None = None) -> FileState | None:
    for envelope in envelopes:
        state = project(state, envelope)
    return state


def catch_up(
    state: FileState | None,
    envelope: Envelope,
    read_events: Callable[[str, int, int], list[Envelope]],
) -> FileState:
    """A projection's `state` moved on to just after `envelope`, a later
    event of its file, reading the events in between (read_events(stream
    id, first version, last version)) when delivery skipped some."""
    first, last = (state.version if state else 0) + 1, envelope.stream_version - 1
    missing = read_events(envelope.stream_id, first, last) if last >= first else []
    return replay([*missing, envelope], state)


# -- who may read ------------------------------------------------------------


def may_read(state: FileState, actor: Actor) -> bool:
    """The applicant, officials of the file's local body, auditors, and the
    counter staff who filed it (in the counter role they filed it in)."""
    if AUDITOR_ROLE in actor.roles:
        return True
    if CITIZEN_ROLE in actor.roles and actor.actor_id == state.applicant_id:
        return True
    filer = state.filed_by
    if filer and actor.actor_id == filer["actor_id"] and filer["role"] in actor.roles:
        return True
    return (
        actor.local_body is not None
        and actor.local_body == state.local_body
        and any(role != CITIZEN_ROLE for role in actor.roles)
    )
