"""An insider's hand on the event store: the database's superuser, with the
events table's guard (the trigger refusing UPDATE, DELETE and TRUNCATE)
switched off, as the tests that show tampering found need it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa


@contextlib.contextmanager
def events_unguarded(platform) -> Iterator[sa.Connection]:
    """One transaction as the superuser, the table's guard off inside it."""
    engine = platform.engine("applications")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE events DISABLE TRIGGER USER"))
            yield conn
            conn.execute(sa.text("ALTER TABLE events ENABLE TRIGGER USER"))
    finally:
        engine.dispose()
