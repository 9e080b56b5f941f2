"""An event store in memory for tests that need sealed events but no
database: the store's own API (append, read_stream, read_all), with every
event sealed by the store's own code (ksmart_common.appender.seal), so the
hashes, versions and positions are the ones PostgreSQL would hold.

Time is the test's: each append is recorded at `clock`, which then moves
on by `tick` (or at the moment an append names).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ksmart_common.appender import AppendRequest, seal
from ksmart_common.canonical import GENESIS_HASH
from ksmart_common.envelope import Envelope, NewEvent
from ksmart_common.errors import VersionConflict

DEFAULT_METADATA = {"actor_id": "tester", "actor_roles": ["clerk"], "correlation_id": "c"}


class InMemoryEventStore:
    def __init__(
        self,
        clock: datetime = datetime(2026, 11, 1, tzinfo=UTC),
        tick: timedelta = timedelta(minutes=5),
    ) -> None:
        self.clock = clock
        self.tick = tick
        self.log: list[Envelope] = []

    def append(
        self,
        stream_id: str,
        events: Iterable[NewEvent],
        expected_version: int | None = None,
        metadata: Mapping[str, Any] = DEFAULT_METADATA,
        recorded_at: datetime | None = None,
    ) -> list[Envelope]:
        """Seal and keep the events, at the end of the stream and the log;
        VersionConflict if the stream is not at `expected_version`."""
        stream = self.read_stream(stream_id)
        current = stream[-1].stream_version if stream else 0
        if expected_version is not None and expected_version != current:
            raise VersionConflict.at(current, expected_version, stream=stream_id)
        events = list(events)
        request = AppendRequest(stream_id, events, expected_version, dict(metadata))
        if recorded_at is None:
            self.clock += self.tick
            recorded_at = self.clock
        prev_hash = stream[-1].hash if stream else GENESIS_HASH
        sealed = [
            envelope
            for envelope, _, _ in seal(request, current, prev_hash, len(self.log), recorded_at)
        ]
        self.log.extend(sealed)
        return sealed

    def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[Envelope]:
        return [
            envelope
            for envelope in self.log
            if envelope.stream_id == stream_id
            and envelope.stream_version >= from_version
            and (to_version is None or envelope.stream_version <= to_version)
        ]

    def read_all(self, after_position: int = 0, limit: int = 500) -> list[Envelope]:
        return self.log[after_position : after_position + limit]
