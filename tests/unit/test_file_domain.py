"""The file's domain without I/O: decisions, refusals and the projector."""

import uuid
from datetime import datetime

import pytest

from ksmart_catalogue.catalogue import Catalogue
from ksmart_catalogue.samples import sample_form
from ksmart_common.domain.file import (
    Actor,
    FileState,
    ProjectionError,
    may_read,
    project,
    replay,
    submit_application,
    take_action,
)
from ksmart_common.domain.intake import applies
from ksmart_common.domain.workflow import DefinitionError, Workflow
from ksmart_common.envelope import Envelope, NewEvent, file_stream_id
from ksmart_common.errors import ActionNotAllowed, Forbidden, InvalidInput
from tests.support.files import sample_uploads
from tests.support.memory_store import InMemoryEventStore

KOCHI = "KL-EKM-KOC"
CITIZEN = Actor("citizen-1", ("citizen",))
OTHER_CITIZEN = Actor("citizen-2", ("citizen",))
CLERK = Actor("clerk-1", ("clerk",), KOCHI)
CLERK_ELSEWHERE = Actor("clerk-2", ("clerk",), "KL-TVM-TVC")
SECRETARY = Actor("secretary-1", ("secretary",), KOCHI)
AUDITOR = Actor("auditor-1", ("auditor",))


@pytest.fixture(scope="module")
def definition():
    return Catalogue.load().get_service("birth-certificate")


def complete_form(definition):
    return sample_form(definition)


class Stream:
    """A file's stream in the in-memory store: decided events sealed as the
    store seals them, each decision five minutes after the one before."""

    def __init__(self, file_id):
        self.stream_id = file_stream_id(file_id)
        self.store = InMemoryEventStore()

    @property
    def clock(self) -> datetime:
        return self.store.clock

    @clock.setter
    def clock(self, moment: datetime) -> None:
        self.store.clock = moment

    @property
    def envelopes(self) -> list[Envelope]:
        return self.store.read_stream(self.stream_id)

    def add(self, events: list[NewEvent], actor: Actor) -> FileState:
        metadata = {
            "actor_id": actor.actor_id,
            "actor_roles": list(actor.roles),
            "correlation_id": "c",
        }
        self.store.append(self.stream_id, events, metadata=metadata)
        return replay(self.envelopes)


def filed(definition):
    file_id = str(uuid.uuid4())
    stream = Stream(file_id)
    form = complete_form(definition)
    state = stream.add(
        submit_application(
            file_id, definition, KOCHI, CITIZEN, form, sample_uploads(definition, form)
        ),
        CITIZEN,
    )
    return stream, state


def test_a_new_file_waits_on_the_clerk_and_pins_its_definition(definition):
    _, state = filed(definition)
    assert (state.state, state.waits_on, state.version) == ("submitted", "clerk", 1)
    assert state.definition_hash == definition["content_hash"]
    assert state.allowed_actions() == ["verify", "return_for_clarification"]


def test_every_missing_required_field_is_named_at_once(definition):
    with pytest.raises(InvalidInput) as raised:
        submit_application("f", definition, KOCHI, CITIZEN, {})
    required = [s for s in definition["fields"] if s["required"] and applies(s, {})]
    documents = [s for s in definition["documents"] if s["required"] and applies(s, {})]
    assert len(raised.value.problems) == len(required) + len(documents)
    assert len(required) >= 2 and len(documents) >= 1


def test_conditional_fields_apply_only_when_their_condition_holds():
    spec = {"name": "hospital_name", "condition": {"field": "place_of_birth", "equals": "hospital"}}
    assert applies(spec, {"place_of_birth": "hospital"})
    assert not applies(spec, {"place_of_birth": "home"})
    assert applies({"name": "x", "condition": {"field": "y", "in": [1, 2]}}, {"y": 2})


def test_only_a_citizen_files_an_application(definition):
    with pytest.raises(Forbidden):
        submit_application("f", definition, KOCHI, CLERK, complete_form(definition))


def test_the_full_path_with_a_return_for_clarification(definition):
    stream, state = filed(definition)
    state = stream.add(take_action(state, "return_for_clarification", CLERK, "need X"), CLERK)
    assert state.waits_on == "applicant"
    state = stream.add(take_action(state, "resubmit", CITIZEN, "here"), CITIZEN)
    state = stream.add(take_action(state, "verify", CLERK), CLERK)
    state = stream.add(take_action(state, "approve", SECRETARY), SECRETARY)
    assert (state.state, state.waits_on, state.is_final) == ("approved", None, True)
    assert [entry["role"] for entry in state.timeline] == [
        "applicant",
        "clerk",
        "applicant",
        "clerk",
        "secretary",
    ]


@pytest.mark.parametrize(
    ("actor", "action", "error"),
    [
        (CLERK, "approve", ActionNotAllowed),  # not from this state
        (CLERK, "fly", ActionNotAllowed),  # no such action
        (SECRETARY, "verify", Forbidden),  # the file waits on a clerk
        (CLERK_ELSEWHERE, "verify", Forbidden),  # another local body
        (CITIZEN, "verify", Forbidden),
        (CLERK, "return_for_clarification", InvalidInput),  # remarks required
    ],
)
def test_refusals(definition, actor, action, error):
    _, state = filed(definition)
    with pytest.raises(error):
        take_action(state, action, actor, None)


def test_only_the_applicant_answers_a_clarification(definition):
    stream, state = filed(definition)
    state = stream.add(take_action(state, "return_for_clarification", CLERK, "need X"), CLERK)
    with pytest.raises(Forbidden):
        take_action(state, "resubmit", OTHER_CITIZEN)
    with pytest.raises(Forbidden):
        take_action(state, "resubmit", CLERK)


def test_who_may_read_a_file(definition):
    _, state = filed(definition)
    assert may_read(state, CITIZEN) and may_read(state, CLERK) and may_read(state, AUDITOR)
    assert not may_read(state, OTHER_CITIZEN)
    assert not may_read(state, CLERK_ELSEWHERE)


def test_the_projector_refuses_gaps_and_foreign_streams(definition):
    stream, state = filed(definition)
    stream.add(take_action(state, "verify", CLERK), CLERK)
    stream.add(take_action(replay(stream.envelopes), "approve", SECRETARY), SECRETARY)
    first, _, third = stream.envelopes
    with pytest.raises(ProjectionError):
        project(project(None, first), third)
    with pytest.raises(ProjectionError):
        project(None, third)
    other, _ = filed(definition)
    with pytest.raises(ProjectionError):
        project(project(None, first), other.envelopes[0])


def test_state_survives_a_round_trip_through_json(definition):
    stream, state = filed(definition)
    state = stream.add(take_action(state, "verify", CLERK), CLERK)
    assert FileState.from_dict(state.to_dict()) == state


def test_a_workflow_that_contradicts_itself_names_every_problem():
    with pytest.raises(DefinitionError) as raised:
        Workflow.from_definition(
            {
                "initial_state": "start",
                "states": {
                    "start": {"waits_on": "clerk"},
                    "island": {"waits_on": "clerk"},
                    "done": {"final": True, "waits_on": "clerk"},
                },
                "actions": [{"name": "go", "from": ["start"], "to": "nowhere", "event": "Went"}],
            }
        )
    message = str(raised.value)
    for expected in (
        "unknown state 'nowhere'",
        "'island' cannot be reached",
        "final state 'done' cannot wait",
        "'island' has no action out of it",
    ):
        assert expected in message
