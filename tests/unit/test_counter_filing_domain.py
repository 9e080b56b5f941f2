"""A file counter staff filed in a citizen's name, in the pure domain: who
may file to which body, what the first event records, who reads the file."""

import uuid

import pytest

from ksmart_catalogue.catalogue import Catalogue
from ksmart_catalogue.samples import sample_form
from ksmart_common.domain.file import (
    APPLICATION_SUBMITTED,
    Actor,
    check_counter_filing,
    may_read,
    replay,
    submit_application,
)
from ksmart_common.domain.roles import counter_role
from ksmart_common.envelope import file_stream_id
from ksmart_common.errors import Forbidden
from tests.support.files import sample_uploads
from tests.support.memory_store import InMemoryEventStore

KOCHI, TVM = "KL-EKM-KOC", "KL-TVM-TVC"
CITIZEN = Actor("citizen-1", ("citizen",))
CLERK = Actor("clerk-1", ("clerk",), KOCHI)
OTHER_CLERK = Actor("clerk-2", ("clerk",), KOCHI)
SECRETARY = Actor("secretary-1", ("secretary",), KOCHI)
OPERATOR = Actor("akshaya-1", ("akshaya_operator",))
OTHER_OPERATOR = Actor("akshaya-2", ("akshaya_operator",))


@pytest.fixture(scope="module")
def definition():
    return Catalogue.load().get_service("birth-certificate")


def filed_by(actor: Actor, role: str) -> dict:
    office = {"local_body": actor.local_body, "name": {"en": "an office", "ml": "an office"}}
    return {"actor_id": actor.actor_id, "role": role, "office": office, "consent_id": "consent-1"}


def counter_file(definition, filer: Actor, role: str, local_body: str = KOCHI):
    file_id = str(uuid.uuid4())
    form = sample_form(definition)
    events = submit_application(
        file_id,
        definition,
        local_body,
        CITIZEN,
        form,
        sample_uploads(definition, form),
        filed_by=filed_by(filer, role),
    )
    store = InMemoryEventStore()
    metadata = {"actor_id": filer.actor_id, "actor_roles": list(filer.roles), "correlation_id": "c"}
    store.append(file_stream_id(file_id), events, metadata=metadata)
    return events, replay(store.read_stream(file_stream_id(file_id)))


def test_a_clerk_files_to_their_own_body_and_an_akshaya_operator_to_any():
    assert check_counter_filing(CLERK, KOCHI) == "clerk"
    assert check_counter_filing(OPERATOR, KOCHI) == "akshaya_operator"
    assert check_counter_filing(OPERATOR, TVM) == "akshaya_operator"
    for actor, body in ((CLERK, TVM), (SECRETARY, KOCHI), (CITIZEN, KOCHI)):
        with pytest.raises(Forbidden):
            check_counter_filing(actor, body)
    assert counter_role(("clerk", "akshaya_operator")) == "akshaya_operator"
    assert counter_role(("secretary",)) is None


def test_the_first_event_names_the_citizen_as_applicant_and_records_the_filer(definition):
    events, state = counter_file(definition, CLERK, "clerk")
    (submitted,) = events
    assert submitted.event_type == APPLICATION_SUBMITTED
    assert submitted.schema_version == 1  # a key added, none changed: no upcasting
    assert submitted.data["applicant_id"] == CITIZEN.actor_id
    assert submitted.data["filed_by"] == filed_by(CLERK, "clerk")
    assert state.applicant_id == CITIZEN.actor_id
    assert state.filed_by == filed_by(CLERK, "clerk")
    assert state.timeline[0]["role"] == "clerk"
    assert state.timeline[0]["actor_id"] == CLERK.actor_id


def test_a_citizens_own_filing_carries_no_filer(definition):
    form = sample_form(definition)
    (submitted,) = submit_application(
        "f", definition, KOCHI, CITIZEN, form, sample_uploads(definition, form)
    )
    assert "filed_by" not in submitted.data


def test_the_filer_reads_the_file_it_filed_and_no_other(definition):
    _events, by_operator = counter_file(definition, OPERATOR, "akshaya_operator", TVM)
    assert may_read(by_operator, OPERATOR)
    assert may_read(by_operator, CITIZEN)
    assert not may_read(by_operator, OTHER_OPERATOR)
    assert not may_read(by_operator, CLERK)  # another body's clerk
    # Only in the counter role it filed in (a token without it reads nothing).
    assert not may_read(by_operator, Actor(OPERATOR.actor_id, ("citizen",)))
    _events, by_clerk = counter_file(definition, CLERK, "clerk")
    assert may_read(by_clerk, OTHER_CLERK)  # the body's officials read it anyway
    assert not may_read(by_clerk, OPERATOR)
