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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from ksmart_common.domain.file import APPLICANT, FileState, project
from ksmart_common.envelope import Envelope

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
)


def apply_event(engine: sa.Engine, envelope: Envelope, fetch_missing: FetchMissing) -> str:
    """Project one delivered event. Returns "applied" or "duplicate"."""
    with engine.begin() as conn:
        conn.execute(
            sa.select(
                sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(envelope.stream_id, 0))
            )
        )
        projected = conn.execute(
            sa.select(files_table.c.projected).where(files_table.c.stream_id == envelope.stream_id)
        ).scalar()
        state = FileState.from_dict(projected) if projected else None
        current = state.version if state else 0
        if envelope.stream_version <= current:
            return "duplicate"
        pending = [envelope]
        if envelope.stream_version > current + 1:
            pending = [
                *fetch_missing(envelope.stream_id, current + 1, envelope.stream_version - 1),
                envelope,
            ]
        for event in pending:
            state = project(state, event)
        _save(conn, state, is_new=projected is None)
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
    }


def _save(conn: sa.Connection, state: FileState, is_new: bool) -> None:
    row = file_row(state)
    if is_new:
        conn.execute(files_table.insert().values(**row))
    else:
        del row["file_id"]
        conn.execute(
            files_table.update().where(files_table.c.file_id == state.file_id).values(**row)
        )


# -- queries ------------------------------------------------------------------


@dataclass(frozen=True)
class InboxPage:
    files: list[dict[str, Any]]
    next_cursor: str | None


def _encode_cursor(submitted_at: datetime, file_id: str) -> str:
    raw = json.dumps([submitted_at.isoformat(), file_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError for anything that is not a cursor we made."""
    padded = cursor + "=" * (-len(cursor) % 4)
    submitted_at, file_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    return datetime.fromisoformat(submitted_at), str(file_id)


def inbox(
    engine: sa.Engine,
    roles: tuple[str, ...],
    local_body: str | None,
    applicant_id: str,
    limit: int,
    cursor: str | None = None,
) -> InboxPage:
    """Files waiting on the caller, oldest first: for an official, files of
    their local body waiting on one of their roles; for a citizen, their own
    files waiting on them."""
    waiting_on_official = sa.and_(
        files_table.c.local_body == local_body, files_table.c.waits_on.in_(roles)
    )
    waiting_on_applicant = sa.and_(
        files_table.c.waits_on == APPLICANT, files_table.c.applicant_id == applicant_id
    )
    conditions = [waiting_on_applicant]
    if local_body is not None:
        conditions.append(waiting_on_official)
    query = (
        sa.select(files_table)
        .where(sa.or_(*conditions))
        .order_by(files_table.c.submitted_at, files_table.c.file_id)
        .limit(limit + 1)
    )
    if cursor:
        after_time, after_id = decode_cursor(cursor)
        query = query.where(
            sa.tuple_(files_table.c.submitted_at, files_table.c.file_id)
            > sa.tuple_(sa.literal(after_time), sa.cast(after_id, pg.UUID))
        )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return InboxPage(
        files=[summary(row) for row in rows],
        next_cursor=_encode_cursor(rows[-1].submitted_at, rows[-1].file_id) if more else None,
    )


def summary(row: sa.Row) -> dict[str, Any]:
    return {
        "file_id": str(row.file_id),
        "file_number": row.projected.get("file_number"),
        "service_code": row.service_code,
        "local_body": row.local_body,
        "state": row.state,
        "waits_on": row.waits_on,
        "version": row.version,
        "submitted_at": row.projected["submitted_at"],
        "updated_at": row.projected["updated_at"],
    }


def projected_file(engine: sa.Engine, file_id: str) -> FileState | None:
    with engine.connect() as conn:
        projected = conn.execute(
            sa.select(files_table.c.projected).where(files_table.c.file_id == file_id)
        ).scalar()
    return FileState.from_dict(projected) if projected else None
