"""The file projection: applying events to the `files` table.

Delivery is at least once and in any order, and several replicas consume
the same queue, so applying an event is idempotent and order-tolerant:
- a per-file advisory lock serialises work on one file across replicas;
- an event at or below the file's projected version is a duplicate: skipped;
- an event beyond the next version reveals a gap: the missing events are
  read from the event store first, then everything is applied in order.
The state itself comes from the one shared projector (ksmart_common.domain).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from ksmart_common.domain.file import APPLICANT, ESCALATION_ROLE, FileState, catch_up
from ksmart_common.envelope import Envelope, format_timestamp

FetchMissing = Callable[[str, int, int], list[Envelope]]

metadata = sa.MetaData()
files_table = sa.Table(
    "files",
    metadata,
    sa.Column("file_id", pg.UUID(as_uuid=False), primary_key=True),
    sa.Column("stream_id", sa.Text),
    sa.Column("service_code", sa.Text),
    sa.Column("local_body", sa.Text),
    sa.Column("applicant_id", sa.Text),
    sa.Column("state", sa.Text),
    sa.Column("waits_on", sa.Text),
    sa.Column("version", sa.Integer),
    sa.Column("submitted_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    sa.Column("projected", pg.JSONB),
    sa.Column("file_number", sa.Text),
    sa.Column("state_due_at", sa.DateTime(timezone=True)),
    sa.Column("file_due_at", sa.DateTime(timezone=True)),
    sa.Column("assigned_to", sa.Text),
    sa.Column("escalated", sa.Boolean),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
)
# Files without a due time (waiting on the applicant) sort after every due one.
NEVER = datetime(9999, 12, 31, tzinfo=UTC)


def table_named(name: str) -> sa.Table:
    """A table shaped like `files` under another name (a rebuild's)."""
    return files_table.to_metadata(sa.MetaData(), name=name)


def apply_event(
    engine: sa.Engine,
    envelope: Envelope,
    fetch_missing: FetchMissing,
    table: sa.Table = files_table,
) -> str:
    """Project one delivered event into `table` (the live `files`, or a
    rebuild's table catching up), in a transaction of its own, holding the
    file's advisory lock so replicas projecting events of one file at once
    take turns. Returns "applied" or "duplicate"."""
    with engine.begin() as conn:
        conn.execute(
            sa.select(
                sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(envelope.stream_id, 0))
            )
        )
        return apply_in(conn, envelope, fetch_missing, table)


def apply_in(
    conn: sa.Connection,
    envelope: Envelope,
    fetch_missing: FetchMissing,
    table: sa.Table = files_table,
) -> str:
    """apply_event's work in the caller's transaction, without the file's
    lock: for a writer that alone writes `table` (the switch-over, holding
    the table's lock)."""
    projected = conn.execute(
        sa.select(table.c.projected).where(table.c.stream_id == envelope.stream_id)
    ).scalar()
    state = FileState.from_dict(projected) if projected else None
    current = state.version if state else 0
    if envelope.stream_version <= current:
        return "duplicate"
    state = catch_up(state, envelope, fetch_missing)
    _save(conn, state, is_new=projected is None, table=table)
    return "applied"


def file_row(state: FileState) -> dict[str, Any]:
    """A file's row in `files` (and in a rebuilt copy of it): one shape for
    the live consumer and the rebuild."""
    return {
        "file_id": state.file_id,
        "stream_id": state.stream_id,
        "service_code": state.service_code,
        "local_body": state.local_body,
        "applicant_id": state.applicant_id,
        "state": state.state,
        "waits_on": state.waits_on,
        "version": state.version,
        "submitted_at": datetime.fromisoformat(state.submitted_at),
        "updated_at": datetime.fromisoformat(state.updated_at),
        "projected": state.to_dict(),
        "file_number": state.file_number,
        "state_due_at": state.state_due_at,
        "file_due_at": state.file_due_at,
        "assigned_to": state.assigned_to,
        "escalated": state.escalated,
        "decided_at": _parse_or_none(state.decided_at),
    }


def _save(conn: sa.Connection, state: FileState, is_new: bool, table: sa.Table) -> None:
    row = file_row(state)
    if is_new:
        conn.execute(table.insert().values(**row))
    else:
        del row["file_id"]
        conn.execute(table.update().where(table.c.file_id == state.file_id).values(**row))


# -- queries ------------------------------------------------------------------


@dataclass(frozen=True)
class FilesPage:
    """A page of files (an inbox, an applicant's list) and the cursor of
    the next page, if there is one."""

    files: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(moment: datetime, file_id: str) -> str:
    """A page's cursor: the last file's sort key (a time, then its id)."""
    raw = json.dumps([moment.isoformat(), file_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (time, file id) a cursor holds. Raises ValueError (or TypeError)
    for anything that is not a cursor we made."""
    padded = cursor + "=" * (-len(cursor) % 4)
    due, file_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    return datetime.fromisoformat(due), str(uuid.UUID(str(file_id)))


@dataclass(frozen=True)
class InboxFilter:
    service_code: str | None = None
    state: str | None = None
    overdue: bool | None = None
    # "me": assigned to the caller; "unassigned": to nobody
    assigned: str | None = None


def inbox(
    engine: sa.Engine,
    roles: tuple[str, ...],
    local_body: str | None,
    caller_id: str,
    limit: int,
    cursor: str | None = None,
    only: InboxFilter = InboxFilter(),
    now: datetime | None = None,
) -> FilesPage:
    """Files waiting on the caller, soonest due first: for an official,
    files of their local body waiting on one of their roles; for a citizen,
    their own files waiting on them. Never another body's files, nor files
    waiting on a role the caller does not hold."""
    now = now or datetime.now(UTC)
    files = files_table.c
    waiting_on_official = sa.and_(files.local_body == local_body, files.waits_on.in_(roles))
    waiting_on_applicant = sa.and_(files.waits_on == APPLICANT, files.applicant_id == caller_id)
    conditions = [waiting_on_applicant]
    if local_body is not None:
        conditions.append(waiting_on_official)
    due = sa.func.coalesce(files.state_due_at, sa.literal(NEVER))
    query = sa.select(files_table, due.label("due")).where(sa.or_(*conditions))
    if only.service_code is not None:
        query = query.where(files.service_code == only.service_code)
    if only.state is not None:
        query = query.where(files.state == only.state)
    if only.overdue is True:
        query = query.where(files.state_due_at < now)
    if only.overdue is False:
        query = query.where(sa.or_(files.state_due_at.is_(None), files.state_due_at >= now))
    if only.assigned == "me":
        query = query.where(files.assigned_to == caller_id)
    if only.assigned == "unassigned":
        query = query.where(files.assigned_to.is_(None))
    if cursor:
        after_due, after_id = decode_cursor(cursor)
        query = query.where(
            sa.tuple_(due, files.file_id)
            > sa.tuple_(sa.literal(after_due), sa.cast(after_id, pg.UUID))
        )
    query = query.order_by(due, files.file_id).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return FilesPage(
        files=[summary(row, now) for row in rows],
        next_cursor=encode_cursor(rows[-1].due, str(rows[-1].file_id)) if more else None,
    )


def applicant_files(
    engine: sa.Engine, applicant_id: str, limit: int, cursor: str | None = None
) -> FilesPage:
    """A citizen's own files, newest first (by submission), whatever their
    state: the `files_applicant` index read backwards. The cursor is the
    last file's (submitted_at, file_id)."""
    files = files_table.c
    query = sa.select(files_table).where(files.applicant_id == applicant_id)
    if cursor:
        after_submitted, after_id = decode_cursor(cursor)
        query = query.where(
            sa.tuple_(files.submitted_at, files.file_id)
            < sa.tuple_(sa.literal(after_submitted), sa.cast(after_id, pg.UUID))
        )
    query = query.order_by(files.submitted_at.desc(), files.file_id.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return FilesPage(
        files=[applicant_summary(row) for row in rows],
        next_cursor=(encode_cursor(rows[-1].submitted_at, str(rows[-1].file_id)) if more else None),
    )


def applicant_summary(row: Any) -> dict[str, Any]:
    """A file as its applicant's list shows it: where it stands, and whether
    it waits on them."""
    return {
        **_where_it_stands(row),
        "file_id": str(row.file_id),
        "needs_applicant": row.waits_on == APPLICANT,
        "submitted_at": row.projected["submitted_at"],
        "version": row.version,
        # Counter staff who filed it in the applicant's name, if any.
        "filed_by": row.projected.get("filed_by"),
    }


def _where_it_stands(row: Any) -> dict[str, Any]:
    """What both a file's applicant and anyone holding its number see."""
    return {
        "file_number": row.file_number,
        "service_code": row.service_code,
        "local_body": row.local_body,
        "state": row.state,
        "waits_on": row.waits_on,
        "state_due_at": _timestamp(row.state_due_at),
        "updated_at": row.projected["updated_at"],
    }


def tracked_file(engine: sa.Engine, file_number: str, now: datetime) -> dict[str, Any] | None:
    """Where the file with this number stands, for anyone who has the
    number (public_progress); None if no file has it."""
    files = files_table.c
    query = sa.select(files_table).where(files.file_number == file_number).limit(1)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return public_progress(row, now) if row is not None else None


def file_id_of_number(engine: sa.Engine, file_number: str) -> str | None:
    """The id of the file with this number (an auditor looks a file's
    events up by the number its notices print); None if no file has it."""
    files = files_table.c
    query = sa.select(files.file_id).where(files.file_number == file_number).limit(1)
    with engine.connect() as conn:
        file_id = conn.execute(query).scalar_one_or_none()
    return str(file_id) if file_id is not None else None


def public_progress(row: Any, now: datetime) -> dict[str, Any]:
    """What anyone holding a file's number may learn of it: its state, the
    service and office, the role it waits on and by when, and when it last
    moved. Numbers run in sequence and could be walked, so nothing about a
    person: no applicant, official, answers, documents or remarks."""
    return {
        **_where_it_stands(row),
        "overdue": row.state_due_at is not None and row.state_due_at < now,
    }


def summary(row: sa.Row, now: datetime) -> dict[str, Any]:
    return {
        "file_id": str(row.file_id),
        "file_number": row.file_number,
        "service_code": row.service_code,
        "local_body": row.local_body,
        "state": row.state,
        "waits_on": row.waits_on,
        "version": row.version,
        "submitted_at": row.projected["submitted_at"],
        "updated_at": row.projected["updated_at"],
        "state_due_at": _iso(row.state_due_at),
        "file_due_at": _iso(row.file_due_at),
        "overdue": row.state_due_at is not None and row.state_due_at < now,
        "assigned_to": row.assigned_to,
        "escalated": bool(row.escalated),
    }


def _parse_or_none(timestamp: str | None) -> datetime | None:
    return datetime.fromisoformat(timestamp) if timestamp else None


def statistics(
    engine: sa.Engine,
    now: datetime,
    local_body: str | None = None,
    service_code: str | None = None,
) -> list[dict[str, Any]]:
    """Per local body and service: files received, decided, pending and
    overdue, and the median days from submission to decision."""
    files = files_table.c
    days = sa.extract("epoch", files.decided_at - files.submitted_at) / 86400.0
    query = (
        sa.select(
            files.local_body,
            files.service_code,
            sa.func.count().label("received"),
            sa.func.count(files.decided_at).label("decided"),
            sa.func.count().filter(files.decided_at.is_(None)).label("pending"),
            sa.func.count().filter(files.state_due_at < now).label("overdue"),
            sa.func.percentile_cont(0.5).within_group(days).label("median_days"),
        )
        .group_by(files.local_body, files.service_code)
        .order_by(files.local_body, files.service_code)
    )
    if local_body is not None:
        query = query.where(files.local_body == local_body)
    if service_code is not None:
        query = query.where(files.service_code == service_code)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "local_body": row.local_body,
            "service_code": row.service_code,
            "received": row.received,
            "decided": row.decided,
            "pending": row.pending,
            "overdue": row.overdue,
            "median_decision_days": (
                round(float(row.median_days), 2) if row.median_days is not None else None
            ),
        }
        for row in rows
    ]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _timestamp(moment: datetime | None) -> str | None:
    """A time as the file's own view writes it (UTC, microseconds, Z)."""
    return format_timestamp(moment) if moment is not None else None


def office_counts(engine: sa.Engine, local_body: str, now: datetime) -> list[dict[str, Any]]:
    """Per role the files wait on in a local body: how many, how many
    overdue, how many assigned to nobody."""
    files = files_table.c
    overdue = sa.func.count().filter(files.state_due_at < now)
    unassigned = sa.func.count().filter(files.assigned_to.is_(None))
    query = (
        sa.select(files.waits_on, sa.func.count(), overdue, unassigned)
        .where(files.local_body == local_body, files.waits_on.is_not(None))
        .where(files.waits_on != APPLICANT)
        .group_by(files.waits_on)
        .order_by(files.waits_on)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {"waits_on": role, "pending": pending, "overdue": late, "unassigned": loose}
        for role, pending, late, loose in rows
    ]


def pending_by_body(engine: sa.Engine, now: datetime) -> list[tuple[str, int, int]]:
    """Per local body: files waiting on the office, and how many of those
    are overdue (for the operators' gauges)."""
    files = files_table.c
    query = (
        sa.select(
            files.local_body, sa.func.count(), sa.func.count().filter(files.state_due_at < now)
        )
        .where(files.waits_on.is_not(None), files.waits_on != APPLICANT)
        .group_by(files.local_body)
    )
    with engine.connect() as conn:
        return [(body, pending, late) for body, pending, late in conn.execute(query)]


def overdue_files(engine: sa.Engine, now: datetime, limit: int = 500) -> list[tuple[str, int]]:
    """Files whose state is past its time and not yet escalated: what the
    escalation timer sends on (the applications service decides again)."""
    files = files_table.c
    query = (
        sa.select(files.file_id, files.version)
        .where(files.state_due_at < now, sa.not_(files.escalated))
        .where(files.waits_on.not_in((ESCALATION_ROLE, APPLICANT)))
        .order_by(files.state_due_at)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [(str(row.file_id), row.version) for row in conn.execute(query)]


def projected_file(engine: sa.Engine, file_id: str) -> FileState | None:
    with engine.connect() as conn:
        projected = conn.execute(
            sa.select(files_table.c.projected).where(files_table.c.file_id == file_id)
        ).scalar()
    return FileState.from_dict(projected) if projected else None
