"""Each file as it stood after the last event this service saw of it.

What a message says is decided from the file right after its event (a fee
demand names the fee, a refusal its reason). Replaying the file's whole
stream for every event meant a call to the applications service and a
replay of every earlier event, for each event: the cost that made this
service's consumer fall behind under load. So the service keeps its own
projection, one row per file, and projects each event onto it:

- the next event of a file: one read, one projection, one write;
- a duplicate of the last event: the stored state is the state after it;
- a gap (events not seen yet, or a file first seen mid-stream): the missing
  events are read from the event store, then projected in order;
- an event older than the stored state (redelivered late): the file as it
  stood then is replayed from the event store, and nothing is stored.

A per-file advisory lock makes replicas take turns on one file, so two
events of one file never project from the same stored state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from ksmart_common.domain.file import FileState, catch_up, replay
from ksmart_common.envelope import Envelope

# (stream id, first version, last version) -> those events, from the event store.
ReadEvents = Callable[[str, int, int], list[Envelope]]


def state_after(
    conn: sa.Connection, envelope: Envelope, read_events: ReadEvents, now: datetime
) -> FileState:
    """The file right after `envelope`, kept up to date in the caller's
    transaction (which holds the file's lock until it ends)."""
    stream_id, version = envelope.stream_id, envelope.stream_version
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:stream_id, 0))"),
        {"stream_id": f"notifications:{stream_id}"},
    )
    row = conn.execute(
        sa.text("SELECT version, state FROM file_states WHERE stream_id = :stream_id"),
        {"stream_id": stream_id},
    ).one_or_none()
    stored = 0 if row is None else row.version
    if version == stored:
        return FileState.from_dict(row.state)
    if version < stored:
        return replay(read_events(stream_id, 1, version))
    state = catch_up(None if row is None else FileState.from_dict(row.state), envelope, read_events)
    conn.execute(
        sa.text(
            "INSERT INTO file_states (stream_id, version, state, updated_at)"
            " VALUES (:stream_id, :version, CAST(:state AS jsonb), :now)"
            " ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version,"
            " state = EXCLUDED.state, updated_at = EXCLUDED.updated_at"
        ),
        {
            "stream_id": stream_id,
            "version": version,
            "state": json.dumps(state.to_dict()),
            "now": now,
        },
    )
    return state
