"""The applications service's commands on a file, over the in-memory store:
one way to load, check, decide and append (commands.decide_and_append)."""

import uuid
from datetime import timedelta

import pytest

from ksmart_applications import commands
from ksmart_applications.command_types import (
    AssignFile,
    EscalateFile,
    RequestContext,
    TakeAction,
)
from ksmart_catalogue.catalogue import Catalogue
from ksmart_common.domain.file import Actor
from ksmart_common.envelope import file_stream_id
from ksmart_common.errors import NotFound, VersionConflict
from tests.support.files import submission
from tests.support.memory_store import InMemoryEventStore

KOCHI = "KL-EKM-KOC"
CITIZEN = Actor("citizen-1", ("citizen",))
CLERK = Actor("clerk-1", ("clerk",), KOCHI)
CLERK_ELSEWHERE = Actor("clerk-2", ("clerk",), "KL-TVM-TVC")
SECTION_OFFICER = Actor("section-officer-1", ("section_officer",), KOCHI)


def _no_definition(content_hash: str) -> dict:
    raise AssertionError("verifying needs no definition")


class _NoCertificateKeys:
    def active_key(self, engine):
        raise AssertionError("verifying issues no certificate")


@pytest.fixture
def filed():
    store = InMemoryEventStore()
    file_id = str(uuid.uuid4())
    definition = Catalogue.load().get_service("birth-certificate")
    store.append(file_stream_id(file_id), submission(file_id, definition, KOCHI, CITIZEN), 0)
    return store, file_id


def _verify(store, file_id, actor=CLERK, expected_version=1, command_id=None):
    command = TakeAction(
        file_id=file_id,
        action="verify",
        expected_version=expected_version,
        actor=actor,
        request=RequestContext(request_id="r-1", command_id=command_id),
    )
    return commands.take_action(
        store, command, pinned_definition=_no_definition, certificate_keys=_NoCertificateKeys()
    )


def test_a_decision_is_appended_with_the_version_read_and_its_request_in_the_metadata(filed):
    store, file_id = filed
    state = _verify(store, file_id)
    assert (state.state, state.version) == ("verified", 2)
    metadata = store.read_stream(file_stream_id(file_id))[-1].metadata
    assert metadata["actor_id"] == CLERK.actor_id and metadata["request_id"] == "r-1"
    assert metadata["correlation_id"] == "r-1" and "command_id" not in metadata


def test_a_stale_expected_version_is_a_conflict_naming_the_current_one(filed):
    store, file_id = filed
    with pytest.raises(VersionConflict) as raised:
        _verify(store, file_id, expected_version=7)
    assert raised.value.detail == "the file is at version 1, not the expected 7"
    assert raised.value.problems == [
        {"field": "expected_version", "message": "current version is 1"}
    ]
    assert len(store.read_stream(file_stream_id(file_id))) == 1


def test_a_decision_delivered_twice_decides_once(filed):
    store, file_id = filed
    first = _verify(store, file_id, command_id="command-1")
    again = _verify(store, file_id, command_id="command-1")
    assert first == again and again.version == 2
    assert store.read_stream(file_stream_id(file_id))[-1].metadata["command_id"] == "command-1"


def test_a_file_outside_the_actors_reach_is_not_found(filed):
    store, file_id = filed
    with pytest.raises(NotFound):
        _verify(store, file_id, actor=CLERK_ELSEWHERE)
    with pytest.raises(NotFound):
        _verify(store, str(uuid.uuid4()))


def test_a_supervisor_assigns_the_file_within_reach(filed):
    store, file_id = filed

    def assignment(actor):
        return AssignFile(
            file_id=file_id, assignee=CLERK, actor=actor, request=RequestContext(request_id="r-2")
        )

    with pytest.raises(NotFound):
        commands.assign(store, assignment(CLERK_ELSEWHERE))
    state = commands.assign(store, assignment(SECTION_OFFICER))
    assert state.version == 2
    stored = store.read_stream(file_stream_id(file_id))[-1]
    assert stored.event_type == "FileAssigned" and stored.data["official_id"] == CLERK.actor_id
    assert stored.metadata["actor_id"] == SECTION_OFFICER.actor_id


def test_the_timer_escalates_from_the_version_it_saw_once(filed):
    store, file_id = filed
    a_month_on = store.clock + timedelta(days=30)
    escalation = EscalateFile(file_id=file_id, seen_version=1, now=a_month_on)
    assert commands.escalate(store, escalation).escalated
    with pytest.raises(VersionConflict):
        commands.escalate(store, escalation)
    stored = store.read_stream(file_stream_id(file_id))
    assert [event.event_type for event in stored] == ["ApplicationSubmitted", "FileEscalated"]
    assert stored[-1].metadata["actor_roles"] == ["system"]
    assert stored[-1].metadata["correlation_id"] == f"escalation-{file_id}"
