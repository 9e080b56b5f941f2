"""The event store: append-only streams in PostgreSQL, one per file.

Its whole API is three calls, and everything else (the relay, projections,
the auditor's tools) is built on them:

    append(stream_id, events, expected_version, metadata) -> [Envelope]
    read_stream(stream_id, to_version=None, until=None)   -> [Envelope]
    read_all(after_position, limit) / iter_all(after_position) -> Envelopes
    iter_by_stream(up_to_position)                       -> [Envelope] per stream

Each read takes `stored=True` for verification: it then gives StoredEvents,
each with the exact text its hash covers, built from the row's `data` and
`metadata` text as stored (read as text, never re-encoded from their parse).

Why global positions never let a reader skip an event
-----------------------------------------------------
A reader (the relay, a projection rebuild) asks for "everything after
position P" and then remembers the largest position it saw. That is only safe
if no event with a smaller position can become visible later. With a plain
sequence it can: transaction A takes position 7, transaction B takes 8 and
commits first; a reader sees 8, remembers 8, and never sees 7.

We serialise position assignment instead. Every append takes one
transaction-scoped advisory lock (APPEND_LOCK) before it reads the last
position, and holds it until its COMMIT has finished. PostgreSQL releases
transaction locks only after the commit is visible to new snapshots, so:
- positions are gap-free: a rolled-back append never leaves a row behind,
  and the next append reads the same max(global_position) again;
- positions are commit-ordered: the append that holds position N+1 started
  assigning only after the one with N was visible, so any snapshot that can
  see N+1 can also see N. A reader following "position > P" never skips.
The price is that commits happen one at a time, so appends are batched into
shared commits (group commit, appender.py). A state's load is ~10 events a
second on average (1 crore files a year, ~10 events each), far below what
one store commits here (`make bench`); a country splits the store by state,
and partitions the table by position range as it grows.
tests/integration/test_eventstore_ordering.py proves the property with many
concurrent writers and a follower.

The database protects the log itself: a trigger refuses UPDATE, DELETE and
TRUNCATE, and the service's role holds only INSERT and SELECT.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from psycopg2.extras import register_uuid
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.engine import Engine

from ksmart_common.appender import Appender, AppendRequest, NumberRequest
from ksmart_common.envelope import REQUIRED_METADATA, Envelope, NewEvent, StoredEvent
from ksmart_common.event_signatures import EventSigner

metadata = sa.MetaData()
events_table = sa.Table(
    "events",
    metadata,
    sa.Column("global_position", sa.BigInteger, primary_key=True),
    sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("stream_id", sa.Text, nullable=False),
    sa.Column("stream_version", sa.Integer, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    # `json`, not `jsonb`: the text is kept byte for byte as written, the
    # canonical text that was hashed. Reads take it as text (_SELECTED), so
    # verification hashes those very bytes (envelope.StoredEvent).
    sa.Column("data", pg.JSON(none_as_null=True), nullable=False),
    sa.Column("metadata", pg.JSON(none_as_null=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("prev_hash", sa.Text, nullable=False),
    sa.Column("hash", sa.Text, nullable=False),
    # The writer's signature over the hash (event_signatures.py); NULL for
    # events stored before events were signed.
    sa.Column("signature", sa.Text, nullable=True),
)

_FIELDS = [field.name for field in fields(Envelope)]
_TEXT_COLUMNS = ("data", "metadata")
# Every column in the Envelope's field order, `data` and `metadata` as their
# stored text: a row's values line up with the Envelope's fields.
_SELECTED = [
    sa.cast(events_table.c[name], sa.Text).label(name)
    if name in _TEXT_COLUMNS
    else events_table.c[name]
    for name in _FIELDS
]
_ENVELOPE_FIELDS = ", ".join(
    f"{name}::text AS {name}" if name in _TEXT_COLUMNS else name for name in _FIELDS
)
_DATA, _METADATA = _FIELDS.index("data"), _FIELDS.index("metadata")


def _to_envelope(row: Sequence[Any]) -> Envelope:
    values = list(row)
    values[_DATA] = json.loads(values[_DATA])
    values[_METADATA] = json.loads(values[_METADATA])
    return Envelope(*values)


def _to_stored(row: Sequence[Any]) -> StoredEvent:
    return StoredEvent.from_row(_to_envelope(row), row[_DATA], row[_METADATA])


def _converter(stored: bool) -> Callable[[Sequence[Any]], Envelope | StoredEvent]:
    return _to_stored if stored else _to_envelope


def _json_safe(value: Any, where: str) -> None:
    """Refuse values whose JSON text would not survive a round trip."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as error:
        raise ValueError(f"{where} is not storable JSON: {error}") from error


class EventStore:
    def __init__(self, engine: Engine, signing: Callable[[], EventSigner] | None = None) -> None:
        """signing: gives the key that signs each appended event (the
        applications service's; it raises ServiceUnavailable while it has
        none it may use). None: events are stored unsigned (a test's store)."""
        self.engine = engine
        self._appender = Appender(engine.raw_connection)
        self._signing = signing

    # -- writing ---------------------------------------------------------

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        metadata: dict[str, Any],
        number: NumberRequest | None = None,
    ) -> list[Envelope]:
        """Append `events` to `stream_id` in one transaction.

        expected_version: the stream's current last version as the caller saw
        it (0 for a stream that must not exist yet), or None to append
        wherever the stream is. A mismatch raises VersionConflict and stores
        nothing.
        number: for a new stream, the series to number it in; the number is
        written into the first event's data (see appender.py).
        """
        if not events:
            raise ValueError("append needs at least one event")
        if number is not None and expected_version != 0:
            raise ValueError("only a new stream (expected_version 0) is given a number")
        missing = [key for key in REQUIRED_METADATA if key not in metadata]
        if missing:
            raise ValueError(f"event metadata lacks {', '.join(missing)}")
        _json_safe(metadata, "metadata")
        for event in events:
            _json_safe(event.data, f"data of {event.event_type}")
        # Before anything is queued: without a key it may use, the writer
        # refuses rather than store what no auditor would trust.
        signer = self._signing() if self._signing is not None else None

        return self._appender.append(
            AppendRequest(stream_id, events, expected_version, metadata, number, signer)
        )

    def close(self) -> None:
        """Stop the committer thread (the engine is the caller's to dispose)."""
        self._appender.close()

    @property
    def largest_batch(self) -> int:
        """The most appends one transaction has committed (group commit)."""
        return self._appender.largest_batch

    # -- reading ---------------------------------------------------------

    def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        until: datetime | None = None,
        stored: bool = False,
    ) -> list[Envelope] | list[StoredEvent]:
        """One stream in version order: optionally up to a version or a moment."""
        query = (
            sa.select(*_SELECTED)
            .where(events_table.c.stream_id == stream_id)
            .where(events_table.c.stream_version >= from_version)
            .order_by(events_table.c.stream_version)
        )
        if to_version is not None:
            query = query.where(events_table.c.stream_version <= to_version)
        if until is not None:
            query = query.where(events_table.c.recorded_at <= until)
        convert = _converter(stored)
        with self.engine.connect() as conn:
            events = [convert(row) for row in conn.execute(query)]
        if events and to_version is None and until is None:
            # The stream's head as of now: lets the next append to it commit
            # in one round trip (appender.py).
            head = events[-1].envelope if stored else events[-1]
            self._appender.remember_head(stream_id, head.stream_version, head.hash)
        return events

    def stream_version(self, stream_id: str) -> int:
        with self.engine.connect() as conn:
            version = conn.execute(
                sa.select(sa.func.max(events_table.c.stream_version)).where(
                    events_table.c.stream_id == stream_id
                )
            ).scalar()
        return version or 0

    def read_all(
        self, after_position: int = 0, limit: int = 500, stored: bool = False
    ) -> list[Envelope] | list[StoredEvent]:
        """One page of the whole log, in position order."""
        query = (
            sa.select(*_SELECTED)
            .where(events_table.c.global_position > after_position)
            .order_by(events_table.c.global_position)
            .limit(limit)
        )
        convert = _converter(stored)
        with self.engine.connect() as conn:
            return [convert(row) for row in conn.execute(query)]

    def iter_all(
        self, after_position: int = 0, batch_size: int = 2_000, stored: bool = False
    ) -> Iterator[Envelope] | Iterator[StoredEvent]:
        """Every event after a position, through a server-side cursor:
        memory stays flat however long the log is."""
        query = (
            sa.select(*_SELECTED)
            .where(events_table.c.global_position > after_position)
            .order_by(events_table.c.global_position)
        )
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(
                query
            )
            convert = _converter(stored)
            for row in result:
                yield convert(row)

    def iter_by_stream(
        self, up_to_position: int | None = None, batch_size: int = 2_000, stored: bool = False
    ) -> Iterator[list[Envelope]] | Iterator[list[StoredEvent]]:
        """Every stream's events as one list, stream after stream, each in
        version order: what a rebuild or an audit of the whole log replays.

        One server-side cursor ordered by (stream_id, stream_version), the
        order the table's unique index keeps, so the database streams rows
        without sorting and memory holds one stream (plus a fetch of
        `batch_size` rows) however long the log. With `up_to_position`,
        only events at or below that position: a consistent cut of the log
        (positions are commit-ordered), taken from last_position() first.

        It runs once per event of the whole log, so it skips SQLAlchemy's
        row layer: psycopg2 gives each value its Python type, and the
        columns are selected in the Envelope's field order.
        """
        convert = _converter(stored)
        where = "WHERE global_position <= %(up_to)s" if up_to_position is not None else ""
        query = f"SELECT {_ENVELOPE_FIELDS} FROM events {where} ORDER BY stream_id, stream_version"
        with self.engine.connect() as conn:
            driver_connection = conn.connection.driver_connection
            with driver_connection.cursor(name="ksmart_iter_by_stream") as cursor:
                register_uuid(conn_or_curs=cursor)  # event_id as uuid.UUID
                cursor.execute(query, {"up_to": up_to_position})
                stream: list = []
                stream_id = None
                while rows := cursor.fetchmany(batch_size):
                    for row in rows:
                        if row[1] != stream_id:
                            if stream:
                                yield stream
                            stream, stream_id = [], row[1]
                        stream.append(convert(row))
                if stream:
                    yield stream

    def last_position(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(events_table.c.global_position), 0))
            ).scalar_one()
