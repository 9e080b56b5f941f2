"""Time limits, clarifications that resume where they were, assignment and
escalation: the file's domain, without I/O."""

import copy
import uuid
from datetime import timedelta

import pytest

from ksmart_catalogue.catalogue import Catalogue
from ksmart_common.domain.file import Actor, assign, escalate, record_payment, take_action
from ksmart_common.errors import ActionNotAllowed, Forbidden, InvalidInput, NotFound
from tests.support.files import submission
from tests.unit.test_file_domain import Stream

KOCHI = "KL-EKM-KOC"
CITIZEN = Actor("citizen-1", ("citizen",))
CLERK = Actor("clerk-1", ("clerk",), KOCHI)
OTHER_CLERK = Actor("clerk-2", ("clerk",), KOCHI)
CLERK_ELSEWHERE = Actor("clerk-9", ("clerk",), "KL-TVM-TVC")
SECRETARY = Actor("secretary-1", ("secretary",), KOCHI)
SECTION_OFFICER = Actor("so-1", ("section_officer",), KOCHI)
PERMIT = Catalogue.load().get_service("building-permit")


def _filed(definition=PERMIT):
    stream = Stream(str(uuid.uuid4()))
    return stream, stream.add(submission("f", definition, KOCHI, CITIZEN), CITIZEN)


def _at(stream, when):
    """Move the stream's clock so the next event is recorded at `when`."""
    stream.clock = when - timedelta(minutes=5)


def test_a_file_knows_when_its_state_and_its_whole_time_limit_run_out():
    _, state = _filed()
    submitted = state.state_due_at - timedelta(
        days=PERMIT["workflow"]["states"]["submitted"]["sla_days"]
    )
    assert state.file_due_at == submitted + timedelta(days=PERMIT["sla_days"])
    assert state.view()["state_due_at"] and state.view()["file_due_at"]
    assert not state.is_overdue(submitted + timedelta(hours=1))
    assert state.is_overdue(state.state_due_at + timedelta(seconds=1))


def test_a_clarification_says_what_is_asked_and_the_file_resumes_where_it_was():
    stream, state = _filed()
    state = stream.add(take_action(state, "verify", CLERK), CLERK)
    inspector = Actor("overseer-1", (state.waits_on,), KOCHI)
    returned_from = state.state
    stream.clock += timedelta(days=1)  # a day of the inspector's time is used
    due_before, file_due_before = state.state_due_at, state.file_due_at
    state = stream.add(
        take_action(state, "return_for_clarification", inspector, "Attach the site plan, signed"),
        inspector,
    )
    assert state.waits_on == "applicant"
    assert state.clarification["asked"] == "Attach the site plan, signed"
    # The applicant's time is not the office's: both clocks stop.
    assert state.state_due_at is None and state.file_due_at is None
    stream.clock += timedelta(days=3)
    state = stream.add(take_action(state, "resubmit", CITIZEN, "Attached"), CITIZEN)
    assert state.state == returned_from  # not back at the start
    assert state.clarification is None
    # The inspector's clock resumes where it stopped; the file's moves on by
    # the time the applicant took, not a day less or more.
    waited = timedelta(days=3, minutes=5)
    assert abs(state.state_due_at - (due_before + waited)) < timedelta(minutes=6)
    assert abs(state.file_due_at - (file_due_before + waited)) < timedelta(minutes=11)


@pytest.mark.parametrize("code", [service["code"] for service in Catalogue.load().list_services()])
def test_every_service_reaches_a_decision_along_its_forward_path(code):
    """Applicant steps that are not answers to a clarification (paying a
    demanded fee, say) go where the definition says, never back in a loop."""
    definition = Catalogue.load().get_service(code)
    stream, state = _filed(definition)
    for _ in range(30):
        if state.is_final:
            break
        offered = [
            name
            for name in state.machine.actions
            if state.state in state.machine.actions[name].from_states
            and name not in ("return_for_clarification", "reject", "close")
            and "return" not in name
            and "cancel" not in name
        ] or state.allowed_actions()
        if state.waits_on == "applicant":
            actor = CITIZEN
        else:
            actor = Actor(f"{state.waits_on}-1", (state.waits_on,), KOCHI)
        if state.fee_due_paise:
            state = stream.add(
                record_payment(state, f"p-{state.version}", "fake", state.fee_due_paise), CITIZEN
            )
        state = stream.add(take_action(state, offered[0], actor, "done"), actor)
    assert state.is_final, (code, state.state)


def test_an_overdue_file_escalates_to_the_secretary_once():
    stream, state = _filed()
    assert state.waits_on == "clerk"
    with pytest.raises(ActionNotAllowed):
        escalate(state, state.state_due_at - timedelta(minutes=1))
    late = state.state_due_at + timedelta(hours=1)
    _at(stream, late)
    state = stream.add(escalate(state, late), Actor("workflow", ("system",)))
    assert (state.waits_on, state.escalated, state.state) == ("secretary", True, "submitted")
    assert state.timeline[-1]["action"] == "escalate"
    with pytest.raises(ActionNotAllowed):
        escalate(state, late + timedelta(days=1))
    # The secretary now acts on the state the clerk left undone.
    state = stream.add(take_action(state, "verify", SECRETARY), SECRETARY)
    assert state.escalated is False


def test_files_are_assigned_by_supervisors_or_taken_by_an_official_of_the_role():
    stream, state = _filed()
    state = stream.add(assign(state, OTHER_CLERK, SECTION_OFFICER), SECTION_OFFICER)
    assert state.assigned_to == OTHER_CLERK.actor_id
    state = stream.add(assign(state, CLERK, CLERK), CLERK)  # takes it himself
    assert state.assigned_to == CLERK.actor_id
    with pytest.raises(Forbidden):
        assign(state, OTHER_CLERK, CLERK)  # not a supervisor
    with pytest.raises(InvalidInput):
        assign(state, SECRETARY, SECTION_OFFICER)  # the file waits on a clerk
    with pytest.raises(InvalidInput):
        assign(state, CLERK_ELSEWHERE, SECTION_OFFICER)
    with pytest.raises(NotFound):
        assign(state, CLERK_ELSEWHERE, Actor("so-9", ("section_officer",), "KL-TVM-TVC"))
    # A decision moves the file on, and the assignment with the state it was for.
    state = stream.add(take_action(state, "verify", CLERK), CLERK)
    assert state.assigned_to is None


def test_the_applicant_answers_a_clarification_with_corrected_data():
    birth = Catalogue.load().get_service("birth-certificate")
    stream, state = _filed(birth)
    state = stream.add(
        take_action(state, "return_for_clarification", CLERK, "The mother's name is misspelt"),
        CLERK,
    )
    with pytest.raises(InvalidInput) as raised:
        take_action(state, "resubmit", CITIZEN, "fixed", {"date_of_birth": "yesterday"}, birth)
    assert raised.value.problems[0]["field"] == "form.date_of_birth"
    state = stream.add(
        take_action(state, "resubmit", CITIZEN, "fixed", {"mother_name": "Asha Menon"}, birth),
        CITIZEN,
    )
    assert state.form["mother_name"] == "Asha Menon" and state.state == "submitted"
    # Only in reply to a clarification.
    with pytest.raises(ActionNotAllowed):
        take_action(state, "verify", CLERK, None, {"mother_name": "Someone"}, birth)


def test_a_definition_says_how_a_state_escalates_to_a_role_or_by_an_action():
    grievance = Catalogue.load().get_service("public-grievance")
    stream, state = _filed(grievance)
    late = state.state_due_at + timedelta(hours=1)
    state = stream.add(escalate(state, late), Actor("workflow", ("system",)))
    assert state.waits_on == "section_officer"  # not the default, the secretary

    renewal = Catalogue.load().get_service("building-permit-renewal")
    stream, state = _filed(renewal)
    while state.state != "verified":
        actor = Actor(f"{state.waits_on}-1", (state.waits_on,), KOCHI)
        action = next(a for a in state.allowed_actions() if "return" not in a)
        state = stream.add(take_action(state, action, actor, "done"), actor)
    late = state.state_due_at + timedelta(hours=1)
    if state.fee_due_paise:  # nothing is granted on the office's behalf before it is paid
        with pytest.raises(ActionNotAllowed, match="fee"):
            escalate(state, late)
        state = stream.add(record_payment(state, "p-1", "fake", state.fee_due_paise), CITIZEN)
    _at(stream, late)
    state = stream.add(escalate(state, late), Actor("workflow", ("system",)))
    assert state.state == "approved"  # a deemed renewal
    assert state.timeline[-1]["role"] == "system"


def test_an_escalation_must_name_an_action_out_of_its_state(tmp_path):
    from ksmart_common.domain.workflow import DefinitionError, Workflow

    workflow = copy.deepcopy(PERMIT["workflow"])
    workflow["states"]["submitted"]["escalation"] = {"action": "approve"}
    with pytest.raises(DefinitionError, match="escalates by 'approve'"):
        Workflow.from_definition(workflow)
