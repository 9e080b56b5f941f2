"""Time limits, clarifications that resume where they were, assignment and
escalation: the file's domain, without I/O."""

import uuid
from datetime import timedelta

import pytest

from ksmart_catalogue.catalogue import Catalogue
from ksmart_common.domain.file import Actor, assign, escalate, take_action
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
    state = stream.add(
        take_action(state, "return_for_clarification", inspector, "Attach the site plan, signed"),
        inspector,
    )
    assert state.waits_on == "applicant"
    assert state.clarification["asked"] == "Attach the site plan, signed"
    assert state.state_due_at is None  # the applicant's time is not the office's
    due_before = state.file_due_at
    stream.clock += timedelta(days=3)
    state = stream.add(take_action(state, "resubmit", CITIZEN, "Attached"), CITIZEN)
    assert state.state == returned_from  # not back at the start
    assert state.clarification is None
    # Three days with the applicant do not count against the office.
    assert state.file_due_at - due_before >= timedelta(days=3)


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
