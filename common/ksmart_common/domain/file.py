"""A file (one application) as events: decide what a command means, and
project events into the file's state.

`project(state, envelope) -> state` is THE projector: the applications service
rebuilds a file with it before deciding, the workflow service's live consumer
and its rebuild use it, and so does the auditor's replay. It is pure: same
events in, same state out.

The first event, ApplicationSubmitted, carries the catalogue definition's
content hash, version and workflow section, so a file is always replayed
against the workflow it was filed under, never against today's catalogue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ksmart_common.domain.workflow import APPLICANT, Workflow
from ksmart_common.envelope import Envelope, NewEvent, format_timestamp
from ksmart_common.errors import ActionNotAllowed, Forbidden, InvalidInput
from ksmart_common.roles import AUDITOR as AUDITOR_ROLE
from ksmart_common.roles import CITIZEN as CITIZEN_ROLE

APPLICATION_SUBMITTED = "ApplicationSubmitted"
SUBMIT_ACTION = "submit"


@dataclass(frozen=True)
class Actor:
    """Who is acting: from the verified token, never from the request body."""

    actor_id: str
    roles: tuple[str, ...]
    local_body: str | None = None


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

    @property
    def machine(self) -> Workflow:
        return _workflow(self.definition_hash, self.workflow)

    @property
    def is_final(self) -> bool:
        return self.machine.is_final(self.state)

    def allowed_actions(self) -> list[str]:
        return [action.name for action in self.machine.actions_from(self.state)]

    def view(self) -> dict[str, Any]:
        """What a reader of the file is shown: everything but the pinned
        workflow itself, plus the actions its state offers now."""
        document = self.to_dict()
        del document["workflow"]
        document["allowed_actions"] = self.allowed_actions()
        return document

    def to_dict(self) -> dict[str, Any]:
        """A shallow dict: its nested values are the state's own, to be
        serialised, not changed. (dataclasses.asdict would deep-copy the
        pinned workflow for every file.)"""
        document = {field.name: getattr(self, field.name) for field in fields(self)}
        document["timeline"] = list(self.timeline)
        return document

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> FileState:
        return cls(**{**document, "timeline": tuple(document["timeline"])})


_MACHINES: dict[str, tuple[Mapping[str, Any], Workflow]] = {}
MAX_CACHED_MACHINES = 1024


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
) -> list[NewEvent]:
    """The events of a new application, or InvalidInput naming every problem."""
    if CITIZEN_ROLE not in applicant.roles:
        raise Forbidden("only a citizen may file an application")
    problems = [
        {"field": f"form.{spec['name']}", "message": "is required"}
        for spec in definition.get("fields", [])
        if spec.get("required") and applies(spec, form) and form.get(spec["name"]) in (None, "")
    ]
    if problems:
        raise InvalidInput("the application is incomplete", problems)
    Workflow.from_definition(definition["workflow"])  # refuse a broken definition early
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
                },
                "local_body": local_body,
                "applicant_id": applicant.actor_id,
                "form": dict(form),
            },
        )
    ]


def applies(spec: Mapping[str, Any], form: Mapping[str, Any]) -> bool:
    """Whether a field or document applies to this form: it has no condition,
    or the form's answer to the condition's field matches it."""
    condition = spec.get("condition")
    if not condition:
        return True
    answer = form.get(condition["field"])
    if "equals" in condition:
        return answer == condition["equals"]
    return answer in condition.get("in", ())


def take_action(
    state: FileState, action_name: str, actor: Actor, remarks: str | None = None
) -> list[NewEvent]:
    """The event of one decision on a file, or the reason it is refused."""
    machine = state.machine
    action = machine.actions.get(action_name)
    allowed = state.allowed_actions()
    if action is None or state.state not in action.from_states:
        raise ActionNotAllowed(
            f"{action_name!r} is not possible while the file is {state.state!r}",
            [{"field": "action", "message": f"allowed now: {', '.join(allowed) or 'none'}"}],
        )
    role = _acting_role(state, actor)
    if action.requires_remarks and not (remarks or "").strip():
        raise InvalidInput(
            f"{action_name!r} needs remarks",
            [{"field": "remarks", "message": "say what is needed or why"}],
        )
    return [
        NewEvent(
            action.event_type,
            {
                "action": action.name,
                "from_state": state.state,
                "to_state": action.to_state,
                "remarks": remarks,
                "actor_role": role,
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
                    "role": APPLICANT,
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
    }
    return replace(
        state,
        state=data["to_state"],
        waits_on=state.machine.waits_on(data["to_state"]),
        version=envelope.stream_version,
        updated_at=at,
        timeline=(*state.timeline, entry),
    )


def replay(envelopes: Iterable[Envelope], state: FileState | None = None) -> FileState | None:
    for envelope in envelopes:
        state = project(state, envelope)
    return state


# -- who may read ------------------------------------------------------------


def may_read(state: FileState, actor: Actor) -> bool:
    """The applicant, officials of the file's local body, and auditors."""
    if AUDITOR_ROLE in actor.roles:
        return True
    if CITIZEN_ROLE in actor.roles and actor.actor_id == state.applicant_id:
        return True
    return (
        actor.local_body is not None
        and actor.local_body == state.local_body
        and any(role != CITIZEN_ROLE for role in actor.roles)
    )
