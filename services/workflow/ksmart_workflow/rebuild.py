"""Rebuilding the file projection from the event store into a fresh table.

The live consumer (projection.apply_event) moves `files` forward one
delivered event at a time. A rebuild instead replays the whole log, stream by
stream, through the same shared projector (ksmart_common.domain.file) and
writes the same row shape (projection.file_row) into a new table shaped like
`files`, while `files` keeps serving. Switching over (granting the service
role, catching up from `last_position` with the live consumer, which skips
what the rebuild already holds, renaming the tables) is the operator
command's job (issue 6), built on this function.

Memory stays constant however long the log: the store hands over one stream
at a time (EventStore.iter_by_stream, a server-side cursor) and rows go out
in batches of `batch_rows`. Each batch is written with COPY by a thread of
its own, on its own connection, so PostgreSQL stores one batch while Python
replays the next (psycopg2 lets go of the GIL while it waits on the server).

Creating the table needs CREATE on the workflow database's schema, which the
service role deliberately lacks: the operator command runs this as the
migration role (tests and the benchmark use the superuser).
"""

from __future__ import annotations

import io
import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ksmart_common.domain.file import replay
from ksmart_common.eventstore import EventStore
from ksmart_workflow.projection import file_row, files_table

Progress = Callable[[int, int], None]
_COLUMNS = [column.name for column in files_table.c]


@dataclass(frozen=True)
class RebuildResult:
    events: int  # events replayed
    files: int  # rows written
    last_position: int  # the log was replayed up to and including this position


def rebuild_files(
    store: EventStore,
    engine: sa.Engine,
    table_name: str,
    progress: Progress | None = None,
    batch_rows: int = 1000,
) -> RebuildResult:
    """Replay every file up to the store's last position (read once, at the
    start) into a new table `table_name` shaped like `files`.

    The table must not exist yet. Each batch of rows commits on its own, so
    no transaction stays open on the workflow database for the whole
    rebuild; a rebuild that fails part way leaves a partial table for the
    caller to drop. progress(events_replayed, last_position) is called after
    each batch.
    """
    last_position = store.last_position()
    quoted = engine.dialect.identifier_preparer.quote(table_name)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {quoted} (LIKE {files_table.name} INCLUDING ALL)"))

    events = files = 0
    lines: list[bytes] = []
    writer = _CopyWriter(engine, f"COPY {quoted} ({', '.join(_COLUMNS)}) FROM STDIN")
    try:
        for stream in store.iter_by_stream(up_to_position=last_position):
            lines.append(_copy_line(file_row(replay(stream))))
            events += len(stream)
            files += 1
            if len(lines) >= batch_rows:
                writer.write(lines)
                lines = []
                if progress is not None:
                    progress(events, last_position)
        if lines:
            writer.write(lines)
    except BaseException:
        writer.close(raise_error=False)
        raise
    writer.close()
    if progress is not None:
        progress(events, last_position)
    return RebuildResult(events=events, files=files, last_position=last_position)


class _CopyWriter:
    """COPYs batches of lines into the table on a thread of its own; the
    first error is raised in the caller's thread by the next write or close."""

    def __init__(self, engine: sa.Engine, copy_sql: str) -> None:
        self._engine = engine
        self._copy_sql = copy_sql
        # One batch waiting while one is written: memory stays bounded.
        self._batches: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rebuild-writer", daemon=True)
        self._thread.start()

    def write(self, lines: list[bytes]) -> None:
        self._raise_error()
        self._batches.put(lines)

    def close(self, raise_error: bool = True) -> None:
        """Wait until every batch is written (or dropped after an error)."""
        self._batches.put(None)
        self._thread.join()
        if raise_error:
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        connection = None
        while (lines := self._batches.get()) is not None:
            if self._error is not None:
                continue  # keep taking batches, so the caller never blocks
            try:
                if connection is None:
                    connection = self._engine.raw_connection()
                with connection.cursor() as cursor:
                    data, lines = io.BytesIO(b"".join(lines)), None
                    cursor.copy_expert(self._copy_sql, data)
                connection.commit()
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                self._error = error
        if connection is not None:
            connection.close()


def _copy_line(row: dict[str, Any]) -> bytes:
    return ("\t".join(_copy_text(row[name]) for name in _COLUMNS) + "\n").encode("utf-8")


def _copy_text(value: Any) -> str:
    """A value in COPY's text format: NULL is \\N, and backslashes, tabs and
    line breaks are escaped."""
    if value is None:
        return "\\N"
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    elif isinstance(value, datetime):
        text = value.isoformat()
    else:
        text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
