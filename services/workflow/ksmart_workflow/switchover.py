"""Rebuilding the workflow projection while the old one keeps serving, then
switching over: the operator's command (`ksmart-admin rebuild-projection`).

1. `rebuild_files` replays the log up to its last position P into a new
   table (constant memory; see rebuild.py), while `files` keeps serving and
   the live consumer keeps moving it forward.
2. Catch-up: the events after P are applied to the new table with the live
   consumer's own code (projection.apply_event: per-file locks, duplicates
   skipped), again and again until the new table is a few events behind.
3. Switch, in one transaction: lock `files` (the live consumer waits, the
   readers wait a moment; the lock is given up after 5 s and tried again,
   so a long reader never makes everyone queue), apply the events up to the
   log's end as it was when the lock was taken, rename `files` to
   `files_replaced_<stamp>` and the new table to `files`, give the service
   role its privileges on it, commit. Statements that waited on the lock
   look the name up again once they get it, so the live consumer goes on in
   the new table; an event it was projecting meanwhile is in the store, and
   the next event of that file fills any gap from the store as always.

The replaced table is kept for the operator to compare and drop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from ksmart_common.eventstore import EventStore
from ksmart_workflow import projection
from ksmart_workflow.rebuild import rebuild_files

# Progress(phase, events done, events in all, events per second, seconds left)
Report = Callable[[str, int, int, float, float | None], None]
SWITCH_WHEN_BEHIND = 500
CATCH_UP_PAGE = 1_000
LOCK_TIMEOUT = "5s"
SWITCH_ATTEMPTS = 5


@dataclass(frozen=True)
class SwitchResult:
    replaced_table: str
    rebuilt_events: int
    caught_up_events: int
    last_position: int


def rebuild_and_switch(
    store: EventStore,
    admin_engine: sa.Engine,
    service_role: str,
    report: Report | None = None,
) -> SwitchResult:
    """Rebuild `files` from position zero and switch over; see the module."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    new_name, old_name = f"files_rebuild_{stamp}", f"files_replaced_{stamp}"
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        if report is not None:
            rate = done / max(time.monotonic() - started, 1e-6)
            left = (total - done) / rate if rate and total >= done else None
            report("rebuild", done, total, rate, left)

    rebuilt = rebuild_files(store, admin_engine, new_name, progress=progress)
    table = projection.table_named(new_name)
    position = rebuilt.last_position
    caught_up = 0
    while store.last_position() - position > SWITCH_WHEN_BEHIND:
        applied, position = _catch_up(store, admin_engine, table, position)
        caught_up += applied
        if report is not None:
            report("catch-up", position, store.last_position(), 0.0, None)
    quote = admin_engine.dialect.identifier_preparer.quote
    for attempt in range(1, SWITCH_ATTEMPTS + 1):
        before, counted = position, caught_up  # a failed attempt's writes roll back
        try:
            with admin_engine.begin() as conn:
                # Waiting behind a long reader would make every new reader
                # queue behind us: give up quickly and try again.
                conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                conn.execute(sa.text("LOCK TABLE files IN ACCESS EXCLUSIVE MODE"))
                # Up to the log's end as it is now, and no further: events
                # stored while we hold the lock reach the new table through
                # the live consumer once it gets the table, with gaps filled
                # from the store as always.
                end = store.last_position()
                while position < end:
                    applied, position = _catch_up(store, admin_engine, table, position, conn, end)
                    caught_up += applied
                    if not applied:
                        break
                _swap_and_grant(conn, quote, new_name, old_name, stamp, service_role)
            break
        except sa.exc.OperationalError as error:
            position, caught_up = before, counted
            if "lock timeout" not in str(error) or attempt == SWITCH_ATTEMPTS:
                raise
            if report is not None:
                report("switch waits", position, store.last_position(), 0.0, None)
    if report is not None:
        report("switched", position, position, 0.0, 0.0)
    return SwitchResult(old_name, rebuilt.events, caught_up, position)


def _swap_and_grant(conn, quote, new_name: str, old_name: str, stamp: str, role: str) -> None:
    _swap_index_names(conn, new_name, stamp)
    conn.execute(sa.text(f"ALTER TABLE files RENAME TO {quote(old_name)}"))
    conn.execute(sa.text(f"ALTER TABLE {quote(new_name)} RENAME TO files"))
    conn.execute(sa.text(f"GRANT SELECT, INSERT, UPDATE ON files TO {quote(role)}"))


def _swap_index_names(conn: sa.Connection, new_name: str, stamp: str) -> None:
    """Give the new table's indexes the names the old ones had (migrations
    refer to them by name); the old ones get a suffix."""
    quote = conn.dialect.identifier_preparer.quote

    def indexes(table: str) -> dict[str, str]:
        rows = conn.execute(
            sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t"),
            {"t": table},
        ).all()
        # The definition without the index's and the table's names.
        return {
            row.indexdef.replace(row.indexname, "").replace(table, "<table>"): row.indexname
            for row in rows
        }

    old, new = indexes("files"), indexes(new_name)
    for definition, old_index in old.items():
        new_index = new.get(definition)
        if new_index is None:
            continue
        conn.execute(
            sa.text(
                f"ALTER INDEX {quote(old_index)} RENAME TO {quote(old_index[:40] + '_' + stamp)}"
            )
        )
        conn.execute(sa.text(f"ALTER INDEX {quote(new_index)} RENAME TO {quote(old_index)}"))


def _catch_up(
    store: EventStore,
    engine: sa.Engine,
    table: sa.Table,
    after: int,
    conn: sa.Connection | None = None,
    end: int | None = None,
) -> tuple[int, int]:
    """Apply one page of events after `after` (up to `end`) to `table`;
    (applied, new position)."""
    events = store.read_all(after, CATCH_UP_PAGE)
    if end is not None:
        events = [event for event in events if event.global_position <= end]

    def fetch_missing(stream_id: str, from_version: int, to_version: int):
        return store.read_stream(stream_id, from_version, to_version)

    for envelope in events:
        if conn is None:
            projection.apply_event(engine, envelope, fetch_missing, table)
        else:
            # No per-file lock: live consumers hold those while they wait for
            # the table lock this transaction holds, and nobody else writes
            # `table`.
            projection.apply_in(conn, envelope, fetch_missing, table)
    return len(events), (events[-1].global_position if events else after)
