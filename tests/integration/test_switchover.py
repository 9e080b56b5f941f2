"""Rebuilding the workflow projection while files keep arriving and being
decided, then switching over: the table that serves afterwards is exactly
what a replay from zero gives, and the live consumer goes on in it."""

import threading

import pytest
import sqlalchemy as sa

from ksmart_common.domain.file import replay
from ksmart_common.eventstore import EventStore
from ksmart_workflow.switchover import rebuild_and_switch
from tests.support import actions, citizen
from tests.support.platform import running_platform
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("switchover")) as running:
        yield running


def _traffic(platform, stop: threading.Event, submitted: list):
    body = citizen.application(platform)
    while not stop.is_set():
        reply = citizen.submit(platform, body)
        if reply.status_code == 201:
            file_id = reply.json()["file_id"]
            submitted.append(file_id)
            actions.act(platform, "clerk.kochi", file_id, "verify")


def _rows(platform):
    with platform.engine("workflow").connect() as conn:
        return {
            str(row.file_id): (row.version, row.state, row.projected)
            for row in conn.execute(sa.text("SELECT file_id, version, state, projected FROM files"))
        }


def test_a_rebuild_while_events_keep_arriving_ends_identical_to_the_live_projection(platform):
    for _ in range(20):
        assert citizen.submit(platform, citizen.application(platform)).status_code == 201
    stop, submitted = threading.Event(), []
    writer = threading.Thread(target=_traffic, args=(platform, stop, submitted))
    writer.start()
    reports = []
    store_engine = sa.create_engine(platform.databases["applications"].url_as("relay"))
    admin_engine = sa.create_engine(platform.databases["workflow"].superuser_url)
    store = EventStore(store_engine)
    try:
        wait_for(lambda: len(submitted) >= 5, timeout=60, message="traffic flowing")
        result = rebuild_and_switch(
            store,
            admin_engine,
            platform.databases["workflow"].roles.of("workflow"),
            lambda *progress: reports.append(progress),
        )
        # Traffic goes on after the switch, into the new table.
        after = len(submitted)
        wait_for(lambda: len(submitted) >= after + 5, timeout=60, message="traffic after")
    finally:
        stop.set()
        writer.join(60)

    assert {phase for phase, *_ in reports} >= {"rebuild", "switched"}
    last = store.last_position()
    expected = {}
    for stream in store.iter_by_stream(up_to_position=last):
        state = replay(stream)
        expected[state.file_id] = (state.version, state.state, state.to_dict())

    def identical():
        rows = _rows(platform)
        return {k: (v, s) for k, (v, s, _) in rows.items()} == {
            k: (v, s) for k, (v, s, _) in expected.items()
        }

    wait_for(identical, timeout=60, message="the switched table equals a replay from zero")
    rows = _rows(platform)
    for file_id, (_, _, projected) in expected.items():
        assert rows[file_id][2] == projected, file_id
    with admin_engine.connect() as conn:
        indexes = set(
            conn.execute(
                sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'files'")
            ).scalars()
        )
        assert {"files_inbox_due", "files_overdue"} <= indexes
        assert conn.execute(sa.text(f"SELECT count(*) FROM {result.replaced_table}")).scalar() > 0
    store.close()
    store_engine.dispose()
    admin_engine.dispose()
