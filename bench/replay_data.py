"""A valid event log of any size, made fast, for the replay benchmark.

Files of ~5 events follow real workflows of the birth-certificate service;
their events interleave in position order as real traffic does (a pool of
files in progress, each step advancing a random one), and every event is
sealed by the store's own `seal`, so hash chains are real and verify. The
rows are loaded with COPY, streamed while they are made. Sealing costs more
than PostgreSQL's ingest (~60 us an event here, almost all in `seal`), so
two processes share the files, each sealing its own and COPYing as it goes.

Each file's decisions are decided once, at start, by the real domain
(submit_application, take_action, replayed by the projector), and then
reused with a new file id and new event ids: every file is one the
projector accepts.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import random
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import psycopg2

from ksmart_catalogue.samples import documents_needed, sample_form
from ksmart_common.appender import AppendRequest, seal
from ksmart_common.canonical import GENESIS_HASH
from ksmart_common.domain.file import Actor, replay, submit_application, take_action
from ksmart_common.domain.intake import Upload
from ksmart_common.envelope import Envelope, NewEvent, file_stream_id, format_timestamp

SERVICE_CODE = "birth-certificate"
LOCAL_BODY = "KL-EKM-KOC"
CLERK = Actor("clerk-1", ("clerk",), LOCAL_BODY)
SECRETARY = Actor("secretary-1", ("secretary",), LOCAL_BODY)
# Decisions after submission; with the submission, 4.75 events a file on average.
HISTORIES = [
    [(CLERK, "verify", None), (SECRETARY, "approve", None)],
    [
        (CLERK, "return_for_clarification", "the hospital's name, please"),
        ("applicant", "resubmit", None),
        (CLERK, "verify", None),
        (SECRETARY, "approve", None),
    ],
    [
        (CLERK, "verify", None),
        (SECRETARY, "return_for_clarification", "ജനന സ്ഥലം വ്യക്തമാക്കുക"),
        # The answer brings the file back to the secretary, where it was.
        ("applicant", "resubmit", None),
        (SECRETARY, "reject", "not registrable here"),
    ],
    [
        (CLERK, "return_for_clarification", "a clearer address"),
        ("applicant", "resubmit", None),
        (CLERK, "verify", None),
        (SECRETARY, "approve", None),
    ],
]
FILES_IN_PROGRESS = 1_000
EVENT_INTERVAL = timedelta(milliseconds=40)
NOW = datetime(2025, 4, 1, tzinfo=UTC)
COPY_COLUMNS = (
    "global_position, event_id, stream_id, stream_version, event_type, schema_version,"
    " data, metadata, recorded_at, prev_hash, hash"
)


def _form(definition: dict[str, Any]) -> dict[str, Any]:
    return sample_form(
        definition,
        {
            "child_name": "ആദിത്യ മേനോൻ",
            "sex": "female",
            "date_of_birth": "2025-11-03",
            "place_of_birth": "hospital",
            "hospital_name": "General Hospital, Ernakulam",
            "applicant_abroad": True,
        },
    )


def _documents(definition: dict[str, Any], form: dict[str, Any]) -> dict[str, Upload]:
    """A plausible upload for each document the form needs."""
    return {
        spec["code"]: Upload(
            hashlib.sha256(spec["code"].encode()).hexdigest(),
            spec["formats"][0],
            180_000,
            f"{spec['code']}.pdf",
        )
        for spec in documents_needed(definition, form)
    }


class _Template:
    """One workflow path: the submission's data (its file id and applicant
    filled in per file) and each decision's event type, data and actor."""

    def __init__(self, definition: dict[str, Any], history: list) -> None:
        applicant = Actor("citizen-template", ("citizen",))
        file_id = str(uuid.uuid4())
        form = _form(definition)
        events = submit_application(
            file_id, definition, LOCAL_BODY, applicant, form, _documents(definition, form)
        )
        self.submission = events[0]
        self.steps: list[tuple[str, dict[str, Any], Actor | str]] = []
        envelopes = _seal_all(file_stream_id(file_id), events, applicant)
        for actor, action, remarks in history:
            state = replay(envelopes)
            acting = applicant if actor == "applicant" else actor
            (event,) = take_action(state, action, acting, remarks)
            self.steps.append((event.event_type, event.data, actor))
            envelopes += _seal_all(state.stream_id, [event], acting, state.version, envelopes)
        replay(envelopes)  # the projector accepts the whole path

    def __len__(self) -> int:
        return 1 + len(self.steps)


def _seal_all(stream_id, events, actor, version=0, before=()) -> list[Envelope]:
    prev_hash = before[-1].hash if before else GENESIS_HASH
    request = AppendRequest(stream_id, events, version, _metadata(actor, "template"))
    return [envelope for envelope, _, _ in seal(request, version, prev_hash, version, NOW)]


def _metadata(actor: Actor, request_id: str) -> dict[str, Any]:
    """As the applications service writes it (commands.event_metadata)."""
    return {
        "actor_id": actor.actor_id,
        "actor_roles": list(actor.roles),
        "local_body": actor.local_body,
        "correlation_id": request_id,
        "causation_id": request_id,
        "request_id": request_id,
    }


class _File:
    __slots__ = ("serial", "stream_id", "applicant", "template", "version", "prev_hash")

    def __init__(self, template: _Template, serial: int) -> None:
        self.serial = serial
        self.stream_id = ""
        self.applicant: Actor | None = None
        self.template = template
        self.version = 0
        self.prev_hash = GENESIS_HASH


class _Request(NamedTuple):
    """What seal() reads of an AppendRequest, without the waiter's
    threading.Event that every AppendRequest makes (a tenth of the cost)."""

    stream_id: str
    events: list[NewEvent]
    expected_version: int | None
    metadata: dict[str, Any]
    # The generated log is unsigned (as one stored before events were
    # signed): signatures are the auditor's check, not the chains'.
    signer: None = None


def generate(
    count: int, part: int = 0, parts: int = 1, seed: int = 2024
) -> Iterator[tuple[Envelope, str, str]]:
    """The events at positions 1..count that belong to files of one part
    (serial % parts == part) of the log, in position order, each with the
    canonical text of its data and metadata (what the store keeps).

    Every part walks the same schedule (which file moves at each position:
    cheap), and seals only its own files' events (the costly part), so
    `parts` processes together make the whole log.
    """
    from ksmart_catalogue.catalogue import Catalogue

    definition = Catalogue.load().get_service(SERVICE_CODE)
    templates = [_Template(definition, history) for history in HISTORIES]
    schedule = random.Random(seed)
    ids = random.Random(f"{seed}-{part}")
    started = datetime(2025, 4, 1, 3, 30, tzinfo=UTC)

    def random_uuid() -> uuid.UUID:
        return uuid.UUID(int=ids.getrandbits(128), version=4)

    serials = itertools.count(1)

    def new_file() -> _File:
        serial = next(serials)
        return _File(templates[serial % len(templates)], serial)

    in_progress = [new_file() for _ in range(min(FILES_IN_PROGRESS, count))]
    for position in range(1, count + 1):
        slot = schedule.randrange(len(in_progress))
        file = in_progress[slot]
        template = file.template
        if file.serial % parts == part:
            if file.version == 0:
                file.stream_id = file_stream_id(random_uuid())
                file.applicant = Actor(f"citizen-{file.serial}", ("citizen",))
                data = {
                    **template.submission.data,
                    "file_id": file.stream_id[5:],
                    "applicant_id": file.applicant.actor_id,
                }
                event_type, actor = template.submission.event_type, file.applicant
            else:
                event_type, data, actor = template.steps[file.version - 1]
                if actor == "applicant":
                    actor = file.applicant
            event = NewEvent(event_type, data, event_id=random_uuid())
            metadata = _metadata(actor, str(random_uuid()))
            request = _Request(file.stream_id, [event], file.version, metadata)
            recorded_at = started + position * EVENT_INTERVAL
            (sealed,) = seal(request, file.version, file.prev_hash, position - 1, recorded_at)
            yield sealed
            file.prev_hash = sealed[0].hash
        file.version += 1
        if file.version == len(template):
            in_progress[slot] = new_file()


def _copy_line(envelope: Envelope, data_text: str, metadata_text: str) -> str:
    # COPY's text format: tab-separated, backslash escaped. JSON text never
    # holds a raw tab or newline, so only its backslashes need doubling.
    data = data_text.replace("\\", "\\\\")
    metadata = metadata_text.replace("\\", "\\\\")
    return (
        f"{envelope.global_position}\t{envelope.event_id}\t{envelope.stream_id}\t"
        f"{envelope.stream_version}\t{envelope.event_type}\t{envelope.schema_version}\t"
        f"{data}\t{metadata}\t{format_timestamp(envelope.recorded_at)}\t"
        f"{envelope.prev_hash}\t{envelope.hash}\n"
    )


class _LinesReader(io.RawIOBase):
    """A file object over generated lines, so COPY streams them as they come."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunks, length = [self._buffer], len(self._buffer)
        while size < 0 or length < size:
            line = next(self._lines, None)
            if line is None:
                break
            encoded = line.encode("utf-8")
            chunks.append(encoded)
            length += len(encoded)
        data = b"".join(chunks)
        if size < 0:
            self._buffer = b""
            return data
        self._buffer = data[size:]
        return data[:size]


def load(
    superuser_dsn: str,
    count: int,
    progress: Callable[[str], None] | None = None,
    parts: int = 2,
) -> None:
    """Fill an empty events table with `count` generated events: `parts`
    processes each seal their share of the files and COPY it in."""
    command = [sys.executable, "-m", "bench.replay_data", superuser_dsn, str(count)]
    workers = [
        subprocess.Popen(
            [*command, str(part), str(parts)],
            stdout=subprocess.PIPE if part == 0 else subprocess.DEVNULL,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        for part in range(parts)
    ]
    for line in workers[0].stdout:  # the first part walks every position: it reports
        if progress is not None:
            progress(line.rstrip())
    failed = [worker.args[-2] for worker in workers if worker.wait() != 0]
    if failed:
        raise RuntimeError(f"generating parts {', '.join(failed)} of the replay log failed")
    connection = psycopg2.connect(superuser_dsn)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE events")
    finally:
        connection.close()


def _load_part(superuser_dsn: str, count: int, part: int, parts: int) -> None:
    every = max(count // 10, 1)

    def lines() -> Iterator[str]:
        position = 0
        for envelope, data_text, metadata_text in generate(count, part, parts):
            if part == 0 and envelope.global_position // every > position // every:
                print(f"replay: generated ~{envelope.global_position:,} of {count:,}", flush=True)
            position = envelope.global_position
            yield _copy_line(envelope, data_text, metadata_text)

    connection = psycopg2.connect(superuser_dsn)
    try:
        with connection, connection.cursor() as cursor:
            cursor.copy_expert(
                f"COPY events ({COPY_COLUMNS}) FROM STDIN", _LinesReader(lines()), size=1 << 20
            )
    finally:
        connection.close()


if __name__ == "__main__":
    dsn, count, part, parts = sys.argv[1], *map(int, sys.argv[2:5])
    _load_part(dsn, count, part, parts)
