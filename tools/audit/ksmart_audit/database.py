"""The applications database as the auditor's source, for operators.

Read-only: its connections run read-only transactions and it only SELECTs,
through EventStore's read methods. It is the one part of the auditor's tool
that needs the kernel's I/O half (SQLAlchemy, psycopg2: ksmart-common[io]):
ksmart_audit.cli imports it only when --database-url is given, so the tool
installs and runs without them for an auditor reading through the gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa

from ksmart_audit.source import SourceError, ViewUnavailable, first_line, stream_of
from ksmart_common.config import with_psycopg2
from ksmart_common.domain import file as files
from ksmart_common.envelope import to_document
from ksmart_common.eventstore import EventStore


class DatabaseSource:
    """The applications database, read-only. `end_position` is the log's
    last position when the source opened: a whole-log read stops there, a
    consistent cut (positions are commit-ordered)."""

    def __init__(self, url: str, batch_size: int = 2_000) -> None:
        self.batch_size = batch_size
        self.engine = sa.create_engine(
            with_psycopg2(url),
            poolclass=sa.pool.NullPool,
            # Every transaction read-only: the database itself refuses a write.
            connect_args={"options": "-c default_transaction_read_only=on"},
        )
        self.store = EventStore(self.engine)
        self.end_position = self._guard(self.store.last_position)

    def describe(self) -> str:
        return f"the database {self.engine.url.render_as_string(hide_password=True)}"

    def close(self) -> None:
        self.store.close()
        self.engine.dispose()

    def _guard(self, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except sa.exc.SQLAlchemyError as error:
            raise SourceError(f"cannot read {self.describe()}: {first_line(error)}") from error

    def log(self, after: int = 0, until: int | None = None) -> Iterator[dict[str, Any]]:
        end = until if until is not None else self.end_position
        if end <= after:
            return
        events = self.store.iter_all(after, batch_size=self.batch_size, stored=True)
        try:
            for event in events:
                if event.envelope.global_position > end:
                    return
                yield to_document(event)
        except sa.exc.SQLAlchemyError as error:
            raise SourceError(f"cannot read {self.describe()}: {first_line(error)}") from error
        finally:
            events.close()  # the server-side cursor and its connection

    def file_events(self, file_id: str) -> Iterator[dict[str, Any]]:
        stream = stream_of(file_id)
        events = self._guard(lambda: self.store.read_stream(stream, stored=True))
        if not events:
            raise SourceError(f"{self.describe()} holds no events of {stream}")
        yield from (to_document(event) for event in events)

    def file_view(self, file_id: str) -> dict[str, Any]:
        """The file as the applications service shows it: the projector run
        over the store (commands.load_file, FileState.view)."""
        envelopes = self._guard(lambda: self.store.read_stream(stream_of(file_id)))
        try:
            state = files.replay(envelopes)
        except (ValueError, KeyError, TypeError) as error:
            raise ViewUnavailable(f"the projector over the store refuses it: {error}") from error
        if state is None:
            raise ViewUnavailable(f"the store has no file {file_id}")
        return state.view()
