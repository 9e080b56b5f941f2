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
time so that only the faulty append fails.

Most batches need only one round trip: the committer remembers the last
position it committed and the head of every stream it wrote or the store
read (a command reads its file before it appends), so it can seal a batch
before taking the lock and send BEGIN, lock, INSERT, NOTIFY, COMMIT at once.
A guess made stale by another writer (a second replica) cannot slip
through: positions and (stream, version) pairs are unique, so the INSERT
collides, nothing is stored, and the batch goes the two-round-trip way.

A new stream may ask for a number in a series (a file number such as
KL-EKM-KOC/BR/2026/000123): the committer gives it the series' last number
plus one, writes it into the first event's data before sealing (so the hash
covers it), and records it in `stream_numbers` in the same transaction.
Numbers are therefore gapless and unique for the same reasons positions
are: they are given under the lock, and a rolled-back batch gives none. The
last number of each series is read with the heads, or remembered, and a
stale memory collides on the table's primary key like a stale head.
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from dataclasses import replace as replace_fields
from datetime import UTC, datetime
from typing import Any

from ksmart_common import metrics
from ksmart_common.canonical import GENESIS_HASH, canonical_text
from ksmart_common.envelope import Envelope, NewEvent, compute_hash
from ksmart_common.errors import VersionConflict
from ksmart_common.event_signatures import EventSigner

# An arbitrary constant: the one lock that orders every append ("ksmart" in hex).
APPEND_LOCK = 0x6B736D617274
# The relay LISTENs here; each commit NOTIFYs with its last position.
NOTIFY_CHANNEL = "ksmart_events_appended"
MAX_BATCH_EVENTS = 1_000
MAX_REMEMBERED_HEADS = 50_000

_COLUMNS = (
    "global_position, event_id, stream_id, stream_version, event_type, schema_version,"
    " data, metadata, recorded_at, prev_hash, hash, signature"
)
_ROW = "(%s, %s, %s, %s, %s, %s, %s::json, %s::json, %s, %s, %s, %s)"
_NUMBER_ROW = "(%s, %s, %s)"
# Prepared once per connection: planned once, not on every commit.
_PREPARE_HEADS = (
    "PREPARE ksmart_heads(text[], text[]) AS"
    " SELECT s.stream_id, h.stream_version, h.hash,"
    " (SELECT coalesce(max(global_position), 0) FROM events), clock_timestamp(),"
    " (SELECT json_object_agg(n.series, (SELECT max(number) FROM stream_numbers"
    "   WHERE series = n.series)) FROM unnest($2) AS n(series))"
    " FROM unnest($1) AS s(stream_id)"
    " LEFT JOIN LATERAL (SELECT stream_version, hash FROM events e"
    "  WHERE e.stream_id = s.stream_id ORDER BY stream_version DESC LIMIT 1) h ON true"
)
# A new statement takes a new snapshot: the heads read after the lock is
# granted see every append that committed before.
_LOCK_AND_READ_HEADS = "BEGIN; SELECT pg_advisory_xact_lock(%s); EXECUTE ksmart_heads(%s, %s)"
MAX_REMEMBERED_SERIES = 50_000


@dataclass(frozen=True)
class NumberRequest:
    """Ask for a new stream's number in `series`: the store writes
    "<series>/<number, `width` digits>" into the first event's data under
    `data_key`, in the appending transaction."""

    series: str
    data_key: str
    width: int = 6

    def format(self, number: int) -> str:
        return f"{self.series}/{number:0{self.width}d}"


@dataclass
class AppendRequest:
    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int | None
    metadata: dict[str, Any]
    number: NumberRequest | None = None
    # Signs each event's hash as it is sealed; None: stored unsigned.
    signer: EventSigner | None = None
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
        self.submitted = 0  # appends handed to the committer, ever (a gauge's source)
        # The most appends one transaction has committed: more than one shows
        # group commit at work (tests/integration/test_group_commit.py).
        self.largest_batch = 0
        # What the committer knows from its own commits and the store's reads:
        # it lets a batch commit in one round trip instead of two.
        self._last_position: int | None = None
        self._last_time = datetime.min.replace(tzinfo=UTC)
        self._heads: OrderedDict[str, _Head] = OrderedDict()
        self._heads_lock = threading.Lock()
        # series -> the last number given in it (the committer's alone)
        self._series: OrderedDict[str, int] = OrderedDict()

    def append(self, request: AppendRequest) -> list[Envelope]:
        self._ensure_started()
        self._queue.put(request)
        with self._start_lock:
            self.submitted += 1
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
        if self._can_predict(batch):
            try:
                self._write_predicted(batch)
                self.largest_batch = max(self.largest_batch, len(batch))
                return
            except Exception:  # noqa: BLE001 - the careful path decides
                # Mostly a UniqueViolation: another writer (a second replica)
                # moved the log or one of these streams since we last
                # looked. Read, and try again the careful way.
                self._rollback()
                self._forget(batch)
        try:
            self._write(batch)
        except Exception as error:  # noqa: BLE001 - every waiter must hear of it
            self._rollback()
            self._forget(batch)
            if len(batch) == 1:
                batch[0].finish(error=error)
                return
            for request in batch:  # find the one at fault; the others commit
                self._commit([request])
        else:
            self.largest_batch = max(self.largest_batch, len(batch))

    def _write(self, batch: list[AppendRequest]) -> None:
        """Two round trips: lock and read the heads, then insert and commit."""
        cursor = self._cursor()
        streams = sorted({request.stream_id for request in batch})
        cursor.execute(_LOCK_AND_READ_HEADS, (APPEND_LOCK, streams, _series_of(batch)))
        rows = cursor.fetchall()
        last_position, now = rows[0][3], rows[0][4]
        heads = {row[0]: _Head(row[1] or 0, row[2] or GENESIS_HASH) for row in rows}
        numbers = {series: last or 0 for series, last in (rows[0][5] or {}).items()}
        self._insert_and_commit(
            cursor, batch, heads, numbers, last_position, max(now, self._last_time)
        )

    def _can_predict(self, batch: list[AppendRequest]) -> bool:
        if self._last_position is None:
            return False
        for request in batch:
            if request.expected_version == 0:
                continue
            head = self._known_head(request.stream_id)
            if head is None or request.expected_version != head.version:
                return False
        return all(series in self._series for series in _series_of(batch))

    def _write_predicted(self, batch: list[AppendRequest]) -> None:
        """One round trip, when we already know the log's last position (our
        own last commit) and each stream's head (read or written through this
        store). A wrong guess cannot slip through: positions and (stream,
        version) pairs are unique, so a stale guess collides and nothing is
        stored. The lock is still taken first and held to COMMIT."""
        heads = {
            request.stream_id: self._known_head(request.stream_id) or _Head(0, GENESIS_HASH)
            for request in batch
        }
        for request in batch:
            if request.expected_version == 0:
                heads[request.stream_id] = _Head(0, GENESIS_HASH)
        numbers = {series: self._series[series] for series in _series_of(batch)}
        now = max(datetime.now(UTC), self._last_time)
        self._insert_and_commit(
            self._cursor(), batch, heads, numbers, self._last_position, now, lock_first=True
        )

    def _insert_and_commit(
        self,
        cursor,
        batch: list[AppendRequest],
        heads: dict[str, _Head],
        numbers: dict[str, int],
        last_position: int,
        now: datetime,
        lock_first: bool = False,
    ) -> None:
        accepted: list[tuple[AppendRequest, list[tuple[Envelope, str, str]]]] = []
        given: list[tuple[str, int, str]] = []  # (series, number, stream)
        refused: list[tuple[AppendRequest, VersionConflict]] = []
        for request in batch:
            head = heads[request.stream_id]
            expected = request.expected_version
            if expected is not None and expected != head.version:
                conflict = VersionConflict.at(head.version, expected, stream=request.stream_id)
                refused.append((request, conflict))
                continue
            to_seal = request
            if request.number is not None:
                series = request.number.series
                numbers[series] += 1
                given.append((series, numbers[series], request.stream_id))
                to_seal = _numbered(request, numbers[series])
            sealed = seal(to_seal, head.version, head.hash, last_position, now)
            last_position += len(sealed)
            last = sealed[-1][0]
            heads[request.stream_id] = _Head(last.stream_version, last.hash)
            accepted.append((request, sealed))

        if accepted:
            rows_sql = ",".join(
                cursor.mogrify(_ROW, _row(*parts)).decode()
                for _, sealed in accepted
                for parts in sealed
            )
            # Every value is already quoted into the statement by mogrify, and
            # the statement is sent without parameters: psycopg2 would
            # otherwise read a citizen's "%" in the rows as a placeholder.
            lock = (
                cursor.mogrify("BEGIN; SELECT pg_advisory_xact_lock(%s); ", (APPEND_LOCK,)).decode()
                if lock_first
                else ""
            )
            numbers_sql = ""
            if given:
                number_rows = ",".join(cursor.mogrify(_NUMBER_ROW, row).decode() for row in given)
                numbers_sql = (
                    f"INSERT INTO stream_numbers (series, number, stream_id) VALUES {number_rows};"
                )
            notify = cursor.mogrify(
                " SELECT pg_notify(%s, %s); COMMIT", (NOTIFY_CHANNEL, str(last_position))
            ).decode()
            cursor.execute(
                f"{lock}INSERT INTO events ({_COLUMNS}) VALUES {rows_sql};{numbers_sql}{notify}"
            )
        elif not lock_first:
            cursor.execute("ROLLBACK")
        self._last_position, self._last_time = last_position, now
        for stream_id, head in heads.items():
            self.remember_head(stream_id, head.version, head.hash)
        for series, last in numbers.items():
            self._series[series] = last
            self._series.move_to_end(series)
            if len(self._series) > MAX_REMEMBERED_SERIES:
                self._series.popitem(last=False)
        for request, sealed in accepted:
            for envelope, _, _ in sealed:
                metrics.EVENTS_APPENDED.labels(envelope.event_type).inc()
            request.finish([envelope for envelope, _, _ in sealed])
        for request, conflict in refused:
            request.finish(error=conflict)

    # -- what this store knows of the log -------------------------------------

    def remember_head(self, stream_id: str, version: int, hash_: str) -> None:
        """A stream's last version and hash, as read or written here."""
        if version == 0:
            return
        with self._heads_lock:  # readers' threads and the committer share it
            known = self._heads.get(stream_id)
            if known is None or known.version <= version:
                self._heads[stream_id] = _Head(version, hash_)
                self._heads.move_to_end(stream_id)
                if len(self._heads) > MAX_REMEMBERED_HEADS:
                    self._heads.popitem(last=False)

    def _known_head(self, stream_id: str) -> _Head | None:
        with self._heads_lock:
            return self._heads.get(stream_id)

    def _forget(self, batch: list[AppendRequest]) -> None:
        self._last_position = None
        with self._heads_lock:
            for request in batch:
                self._heads.pop(request.stream_id, None)
        for series in _series_of(batch):
            self._series.pop(series, None)

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
        self._last_position = None
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.invalidate()
            except Exception:  # noqa: BLE001
                pass


def _series_of(batch: list[AppendRequest]) -> list[str]:
    return sorted({request.number.series for request in batch if request.number is not None})


def _numbered(request: AppendRequest, number: int) -> AppendRequest:
    """A copy of the request, to seal, with its number written into its
    first event's data (the caller still waits on the original)."""
    first, *rest = request.events
    data = {**first.data, request.number.data_key: request.number.format(number)}
    return replace_fields(request, events=[replace_fields(first, data=data), *rest])


def seal(
    request: AppendRequest,
    current_version: int,
    prev_hash: str,
    last_position: int,
    recorded_at: datetime,
) -> list[tuple[Envelope, str, str]]:
    """Give each new event its place in the stream and in the log, and its
    hash, and the request's signer's signature over that hash. Returns each
    envelope with the canonical text of its data and metadata, which is also
    what gets stored."""
    metadata_text = canonical_text(request.metadata)
    sealed = []
    for offset, event in enumerate(request.events, start=1):
        data_text = canonical_text(event.data)
        unsealed = Envelope(
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
        )
        hash_ = compute_hash(unsealed, data_text, metadata_text)
        signature = request.signer.sign(hash_) if request.signer is not None else None
        envelope = replace_fields(unsealed, hash=hash_, signature=signature)
        sealed.append((envelope, data_text, metadata_text))
        prev_hash = envelope.hash
    return sealed


def _row(envelope: Envelope, data_text: str, metadata_text: str) -> tuple:
    return (
        envelope.global_position,
        str(envelope.event_id),
        envelope.stream_id,
        envelope.stream_version,
        envelope.event_type,
        envelope.schema_version,
        data_text,
        metadata_text,
        envelope.recorded_at,
        envelope.prev_hash,
        envelope.hash,
        envelope.signature,
    )
