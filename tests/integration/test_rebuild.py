"""Rebuilding the file projection from the whole log into a fresh table gives
what replaying each stream gives, and what the live consumer built."""

import uuid

import pytest
import sqlalchemy as sa

from ksmart_common.domain.file import Actor, replay, take_action
from ksmart_common.envelope import file_stream_id
from ksmart_workflow import projection
from ksmart_workflow.rebuild import RebuildResult, rebuild_files
from tests.support.files import submission

LOCAL_BODY = "KL-EKM-KOC"
CITIZEN = Actor("citizen-1", ("citizen",))
CLERK = Actor("clerk-1", ("clerk",), LOCAL_BODY)
SECRETARY = Actor("secretary-1", ("secretary",), LOCAL_BODY)
METADATA = {"actor_id": "x", "actor_roles": [], "correlation_id": "test"}

# Each file's decisions after submission; together they leave files in every state.
HISTORIES = [
    [],
    [(CLERK, "verify", None)],
    [(CLERK, "return_for_clarification", "the hospital's name, please")],
    [(CLERK, "verify", None), (SECRETARY, "approve", None)],
    [(CLERK, "verify", None), (SECRETARY, "reject", "not born here")],
    [
        (CLERK, "return_for_clarification", "need more:\n\tthe ward \\ house number"),
        (CITIZEN, "resubmit", None),
        (CLERK, "verify", None),
        (SECRETARY, "approve", "ജനനം രേഖപ്പെടുത്തി"),
    ],
]


@pytest.fixture(scope="module")
def definition():
    from ksmart_catalogue.catalogue import Catalogue

    return Catalogue.load().get_service("birth-certificate")


@pytest.fixture
def workflow_engines(workflow_db):
    service = sa.create_engine(workflow_db.service_url)
    owner = sa.create_engine(workflow_db.superuser_url)
    yield service, owner
    service.dispose()
    owner.dispose()


def _store_files(store, definition, copies=2):
    """Files in every state, their decisions interleaved as real traffic is."""
    pending = {}
    for history in HISTORIES * copies:
        file_id = str(uuid.uuid4())
        answers = {"child_name": f"Child of {file_id[:8]}"}
        events = submission(file_id, definition, LOCAL_BODY, CITIZEN, answers)
        store.append(file_stream_id(file_id), events, 0, METADATA)
        pending[file_id] = list(history)
    while any(pending.values()):
        for file_id, steps in pending.items():
            if steps:
                actor, action, remarks = steps.pop(0)
                state = replay(store.read_stream(file_stream_id(file_id)))
                events = take_action(state, action, actor, remarks)
                store.append(file_stream_id(file_id), events, state.version, METADATA)
    return list(pending)


def _rows(engine, table_name):
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT * FROM {table_name} ORDER BY file_id")).all()


def test_rebuild_equals_replay_and_the_live_projection(store, workflow_engines, definition):
    service_engine, owner_engine = workflow_engines
    file_ids = _store_files(store, definition)
    for envelope in store.iter_all():  # the live consumer, fed in position order
        projection.apply_event(
            service_engine,
            envelope,
            lambda stream, first, last: store.read_stream(stream, first, last),
        )
    seen = []

    result = rebuild_files(
        store,
        owner_engine,
        "files_rebuilt",
        progress=lambda events, last: seen.append((events, last)),
        batch_rows=5,
    )

    assert result == RebuildResult(
        events=store.last_position(), files=len(file_ids), last_position=store.last_position()
    )
    assert seen[-1] == (result.events, result.last_position) and len(seen) > 1
    rebuilt = _rows(owner_engine, "files_rebuilt")
    assert sorted(str(row.file_id) for row in rebuilt) == sorted(file_ids)
    for row in rebuilt:
        assert row.projected == replay(store.read_stream(row.stream_id)).to_dict()
    assert {row.state for row in rebuilt} == {
        "submitted",
        "verified",
        "clarification_requested",
        "approved",
        "rejected",
    }
    assert rebuilt == _rows(owner_engine, "files")


def test_rebuild_holds_the_log_as_it_was_when_it_started(store, workflow_engines, definition):
    _, owner_engine = workflow_engines
    assert rebuild_files(store, owner_engine, "files_empty") == RebuildResult(0, 0, 0)
    file_ids = _store_files(store, definition, copies=1)
    before = store.last_position()
    late = []

    def append_meanwhile(events, last_position):
        late.extend(_store_files(store, definition, copies=1)[:1])

    result = rebuild_files(store, owner_engine, "files_cut", append_meanwhile, batch_rows=2)

    assert late and store.last_position() > before
    assert result == RebuildResult(events=before, files=len(file_ids), last_position=before)
    assert sorted(str(row.file_id) for row in _rows(owner_engine, "files_cut")) == sorted(file_ids)


def test_rebuild_needs_a_fresh_table(store, workflow_engines):
    _, owner_engine = workflow_engines
    with pytest.raises(sa.exc.ProgrammingError, match="already exists"):
        rebuild_files(store, owner_engine, "files")
