"""Writing to the event store: group commit under one ordering lock.

Every append must hold the store's ordering lock (APPEND_LOCK) from the
moment it reads the last global position until its COMMIT is visible; see
eventstore.py for why that makes positions gap-free and commit-ordered.
Committing appends one by one would then cap a store at one fsync at a time.

So appends are batched, as databases batch their own commits: callers hand
their append to the store's one committer thread and wait. The committer
takes every append waiting (up to MAX_BATCH_EVENTS events) and writes them
in one transaction, in two round trips:

  1. BEGIN; take the lock; read the last position, the clock, and the head
     (version and hash) of every stream in the batch;
  2. INSERT every sealed event; NOTIFY the relay; COMMIT.

Each append in a batch is still judged alone: one whose expected version is
stale gets its VersionConflict and the rest commit. If the INSERT itself
fails (a duplicate event id, say), the batch is retried one append at a
time so that only the faulty append fails. A lone writer pays the same two
round trips as it would without batching; many writers share each commit.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ksmart_common.canonical import GENESIS_HASH
from ksmart_common.envelope import Envelope, NewEvent
from ksmart_common.errors import VersionConflict

# An arbitrary constant: the one lock that orders every append ("ksmart" in hex).
APPEND_LOCK = 0x6B736D617274
# The relay LISTENs here; each commit NOTIFYs with its last position.
NOTIFY_CHANNEL = "ksmart_events_appended"
MAX_BATCH_EVENTS = 1_000

_COLUMNS = (
    "global_position, event_id, stream_id, stream_version, event_type, schema_version,"
    " data, metadata, recorded_at, prev_hash, hash"
)
_ROW = "(%s, %s, %s, %s, %s, %s, %s::json, %s::json, %s, %s, %s)"
# Prepared once per connection: planned once, not on every commit.
_PREPARE_HEADS = (
    "PREPARE ksmart_heads(text[]) AS"
    " SELECT s.stream_id, h.stream_version, h.hash,"
    " (SELECT coalesce(max(global_position), 0) FROM events), clock_timestamp()"
    " FROM unnest($1) AS s(stream_id)"
    " LEFT JOIN LATERAL (SELECT stream_version, hash FROM events e"
    "  WHERE e.stream_id = s.stream_id ORDER BY stream_version DESC LIMIT 1) h ON true"
)
# A new statement takes a new snapshot: the heads read after the lock is
# granted see every append that committed before.
_LOCK_AND_READ_HEADS = "BEGIN; SELECT pg_advisory_xact_lock(%s); EXECUTE ksmart_heads(%s)"


@dataclass
class AppendRequest:
    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int | None
    metadata: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    envelopes: list[Envelope] | None = None
    error: BaseException | None = None

    def finish(
        self, envelopes: list[Envelope] | None = None, error: BaseException | None = None
    ) -> None:
        self.envelopes, self.error = envelopes, error
        self.done.set()


@dataclass
class _Head:
    version: int
    hash: str


class Appender:
    """The store's committer: one thread, one connection, batches of appends."""

    def __init__(self, connect) -> None:
        """connect() -> a pooled DBAPI connection (SQLAlchemy raw_connection)."""
        self._connect = connect
        self._queue: queue.SimpleQueue[AppendRequest | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._connection = None

    def append(self, request: AppendRequest) -> list[Envelope]:
        self._ensure_started()
        self._queue.put(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.envelopes

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10)
            self._thread = None
        self._drop_connection()

    # -- the committer -------------------------------------------------------

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="event-store-committer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, size = [first], len(first.events)
            while size < MAX_BATCH_EVENTS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
                size += len(more.events)
            self._commit(batch)

    def _commit(self, batch: list[AppendRequest]) -> None:
        try:
            self._write(batch)
        except Exception as error:  # noqa: BLE001 - every waiter must hear of it
            self._rollback()
            if len(batch) == 1:
                batch[0].finish(error=error)
                return
            for request in batch:  # find the one at fault; the others commit
                self._commit([request])

    def _write(self, batch: list[AppendRequest]) -> None:
        cursor = self._cursor()
        streams = sorted({request.stream_id for request in batch})
        cursor.execute(_LOCK_AND_READ_HEADS, (APPEND_LOCK, streams))
        rows = cursor.fetchall()
        last_position, now = rows[0][3], rows[0][4]
        heads = {row[0]: _Head(row[1] or 0, row[2] or GENESIS_HASH) for row in rows}

        accepted: list[tuple[AppendRequest, list[Envelope]]] = []
        refused: list[tuple[AppendRequest, VersionConflict]] = []
        for request in batch:
            head = heads[request.stream_id]
            expected = request.expected_version
            if expected is not None and expected != head.version:
                refused.append((request, _conflict(request.stream_id, head.version, expected)))
                continue
            envelopes = seal(request, head.version, head.hash, last_position, now)
            last_position += len(envelopes)
            heads[request.stream_id] = _Head(envelopes[-1].stream_version, envelopes[-1].hash)
            accepted.append((request, envelopes))

        if accepted:
            rows_sql = ",".join(
                cursor.mogrify(_ROW, _row(envelope)).decode()
                for _, envelopes in accepted
                for envelope in envelopes
            )
            cursor.execute(
                f"INSERT INTO events ({_COLUMNS}) VALUES {rows_sql};"
                " SELECT pg_notify(%s, %s); COMMIT",
                (NOTIFY_CHANNEL, str(last_position)),
            )
        else:
            cursor.execute("ROLLBACK")
        for request, envelopes in accepted:
            request.finish(envelopes)
        for request, conflict in refused:
            request.finish(error=conflict)

    # -- the connection ------------------------------------------------------

    def _cursor(self):
        if self._connection is None:
            self._connection = self._connect()
            # Transactions are spelled out (BEGIN ... COMMIT) so that each
            # phase is one round trip.
            self._connection.driver_connection.autocommit = True
            self._connection.cursor().execute(_PREPARE_HEADS)
        return self._connection.cursor()

    def _rollback(self) -> None:
        try:
            if self._connection is not None:
                self._connection.cursor().execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - a broken connection is replaced
            self._drop_connection()

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.invalidate()
            except Exception:  # noqa: BLE001
                pass


def seal(
    request: AppendRequest,
    current_version: int,
    prev_hash: str,
    last_position: int,
    recorded_at: datetime,
) -> list[Envelope]:
    """Give each new event its place in the stream and in the log, and its hash."""
    sealed: list[Envelope] = []
    for offset, event in enumerate(request.events, start=1):
        envelope = Envelope(
            event_id=event.event_id,
            stream_id=request.stream_id,
            stream_version=current_version + offset,
            global_position=last_position + offset,
            event_type=event.event_type,
            schema_version=event.schema_version,
            data=event.data,
            metadata=request.metadata,
            recorded_at=recorded_at,
            prev_hash=prev_hash,
            hash="",
        ).with_hash()
        sealed.append(envelope)
        prev_hash = envelope.hash
    return sealed


def _row(envelope: Envelope) -> tuple:
    return (
        envelope.global_position,
        str(envelope.event_id),
        envelope.stream_id,
        envelope.stream_version,
        envelope.event_type,
        envelope.schema_version,
        json.dumps(envelope.data, ensure_ascii=False),
        json.dumps(envelope.metadata, ensure_ascii=False),
        envelope.recorded_at,
        envelope.prev_hash,
        envelope.hash,
    )


def _conflict(stream_id: str, current: int, expected: int) -> VersionConflict:
    return VersionConflict(
        f"{stream_id} is at version {current}, not the expected {expected}",
        [{"field": "expected_version", "message": f"current version is {current}"}],
    )
