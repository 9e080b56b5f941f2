"""Faults under load: a steady stream of submissions and decisions against
the platform on a PostgreSQL and a RabbitMQ of its own, while the test
restarts RabbitMQ, kills the applications service (with its relay) and the
workflow service with SIGKILL, and restarts PostgreSQL. Then it checks what
a citizen and an auditor would:

- every submission answered 2xx exists exactly once, and no submission that
  was never accepted left anything behind (a file, half a file);
- every event is projected exactly once: the workflow projection of every
  file is at the stream's head, and equals a replay from zero with the
  shared projector;
- no notification went out twice: one SMS per message in the delivery log,
  each at the phone once, and every one sent;
- every refusal was a 503 with Retry-After (never a 500, never silence);
- every fault was felt: requests met it, and the probe sent into its outage
  was refused; submissions, decisions, events and SMS all flowed;
- no process exited on its own, though the RabbitMQ restart always catches
  RPC replies in flight (appends held at the database while the broker
  stops, then let go: their workers answer into the outage);
- nothing was dead-lettered: every `*.dead` queue on the broker is empty
  (an outage defers a consumer's message; it never spends its retries).

The submitting clients behave well: a failed submission is sent again with
the same Idempotency-Key until it is answered 2xx (a connection dropped after
the commit answers an error though the file exists; the retry finds it).
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pika
import requests
import sqlalchemy as sa

from ksmart_common.config import RetryPolicy
from ksmart_common.domain.file import FileState, replay
from ksmart_common.eventstore import EventStore
from ksmart_notifications import dev_inbox
from ksmart_ops.devserver import is_ready
from tests.support import citizen
from tests.support.inbox import phone_number, served_inbox, sign_in_by_phone
from tests.support.own_infrastructure import OwnPlatform, platform_on_own_infrastructure
from tests.support.waiting import wait_for

CLIENT_TIMEOUT = 15
FINAL_STATES = ("approved", "rejected")
# How long a submission is retried (same key) after the stream has stopped.
RETRY_GRACE_SECONDS = 60


# -- the platform and its phone ----------------------------------------------------------


@dataclass
class FaultBed:
    own: OwnPlatform
    inbox: dev_inbox.DevInbox
    phones: list[str]
    # What the clients saw (the stream's requests, and the faults' probes).
    ledger: Ledger = field(default_factory=lambda: Ledger())
    # Processes that exited on their own (not killed by a fault), restarted.
    exits: list[str] = field(default_factory=list)
    # The fault the platform is in or recovering from (the last one begun).
    current_fault: str = "before any fault"

    @property
    def platform(self):
        return self.own.platform


@contextlib.contextmanager
def fault_bed(tmp_dir: Path, citizens: int = 2) -> Iterator[FaultBed]:
    """The platform on its own infrastructure, the dev inbox in this process
    as its SMS provider and mail server, and citizens signed in by code."""
    with served_inbox() as (inbox, inbox_environ):
        environ = {
            **inbox_environ,
            "KSMART_NOTIFICATIONS_SWEEP_SECONDS": "1",
            # A message whose hand-over was lost (its publish failed in an outage,
            # its process died) is handed over again after this, not 5 minutes.
            "KSMART_NOTIFICATIONS_STALE_SECONDS": "20",
            "KSMART_OTP_PER_CLIENT": "1000",
            # A stuck call is refused (503) well before the client gives up.
            "KSMART_RPC_TIMEOUT": "5",
        }
        # The production back-off (1 s, 5 s, 30 s), not the tests' 0.6 s in all:
        # a consumer must ride out a database restart, not dead-letter what
        # arrives meanwhile (as the tests' back-off does after 0.6 s).
        delays = RetryPolicy().delays_ms
        with platform_on_own_infrastructure(tmp_dir, environ, delays) as own:
            phones = [phone_number() for _ in range(citizens)]
            for phone in phones:
                sign_in_by_phone(own.platform, inbox, phone)
            for official in ("clerk.kochi", "secretary.kochi"):
                own.platform.token(official)
            yield FaultBed(own, inbox, phones)


# -- the stream --------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the clients saw, request by request (thread-safe)."""

    accepted: dict[str, str] = field(default_factory=dict)  # marker -> file_id
    abandoned: list[str] = field(default_factory=list)  # markers never accepted
    decisions: int = 0
    refused: int = 0  # answered 503 with Retry-After
    # The fault each request met: a refusal (503 with Retry-After) or no
    # answer counted against the fault it came during or after.
    felt: Counter = field(default_factory=Counter)
    # What the probe asked during each fault's outage was answered with (a
    # status, or "no answer"): a 200 means that outage was not one.
    probes: dict[str, list[str]] = field(default_factory=dict)
    # Any other failure: (the fault it came during or after, what was said).
    bad_refusals: list[tuple[str, str]] = field(default_factory=list)
    # The client timed out or the connection failed: the fault it came in.
    no_answer: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_failure(self, window: str, what: str, reply: requests.Response) -> None:
        with self.lock:
            if reply.status_code == 503 and reply.headers.get("Retry-After"):
                self.refused += 1
                self.felt[window] += 1
            else:
                said = f"{what}: {reply.status_code} {reply.text[:200]}"
                self.bad_refusals.append((window, said))

    def note_no_answer(self, window: str) -> None:
        with self.lock:
            self.no_answer.append(window)
            self.felt[window] += 1

    def note_probe(self, window: str, answer: str) -> None:
        with self.lock:
            self.probes.setdefault(window, []).append(answer)


class Stream:
    """Citizens submitting applications and officials deciding on them, each
    in a thread of its own, at a modest pace (the machine is shared)."""

    def __init__(self, bed: FaultBed, pause: float = 0.3) -> None:
        self.bed = bed
        self.pause = pause
        self.ledger = bed.ledger
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.templates = {
            phone: citizen.application(bed.platform, user=phone) for phone in bed.phones
        }

    def start(self) -> Stream:
        targets: list[Callable[[], None]] = [
            *(lambda phone=phone: self._submitting(phone) for phone in self.bed.phones),
            self._deciding,
        ]
        for target in targets:
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self) -> Ledger:
        self.stopping.set()
        for thread in self.threads:
            thread.join(RETRY_GRACE_SECONDS + 2 * CLIENT_TIMEOUT)
        return self.ledger

    def _submitting(self, phone: str) -> None:
        while not self.stopping.is_set():
            marker = uuid.uuid4().hex[:12]
            body = copy.deepcopy(self.templates[phone])
            body["form"]["child_name"] = f"Child {marker}"
            self._submit_until_accepted(phone, marker, body)
            time.sleep(self.pause)

    def _submit_until_accepted(self, phone: str, marker: str, body: dict) -> None:
        key = f"fault-{marker}"
        give_up_at = None
        while True:
            if self.stopping.is_set() and give_up_at is None:
                give_up_at = time.monotonic() + RETRY_GRACE_SECONDS
            if give_up_at is not None and time.monotonic() > give_up_at:
                with self.ledger.lock:
                    self.ledger.abandoned.append(marker)
                return
            try:
                reply = requests.post(
                    f"{self.bed.platform.base_url}/api/v1/files",
                    json=body,
                    headers={**self.bed.platform.as_user(phone), "Idempotency-Key": key},
                    timeout=CLIENT_TIMEOUT,
                )
            except requests.RequestException:
                self.ledger.note_no_answer(self.bed.current_fault)
            else:
                if reply.status_code in (200, 201):
                    with self.ledger.lock:
                        self.ledger.accepted[marker] = reply.json()["file_id"]
                    return
                self.ledger.note_failure(self.bed.current_fault, "submit", reply)
            time.sleep(1.0)

    def _deciding(self) -> None:
        done: set[str] = set()
        while not self.stopping.is_set():
            with self.ledger.lock:
                pending = [f for f in self.ledger.accepted.values() if f not in done]
            for file_id in pending[:5]:
                if self.stopping.is_set():
                    return
                if self._decide(file_id):
                    done.add(file_id)
                time.sleep(self.pause)
            time.sleep(self.pause)

    def _decide(self, file_id: str) -> bool:
        """One step on the file; True once it is final."""
        platform = self.bed.platform
        url = f"{platform.base_url}/api/v1/files/{file_id}"
        try:
            reply = requests.get(url, headers=platform.as_user("clerk.kochi"), timeout=15)
            if reply.status_code != 200:
                self.ledger.note_failure(self.bed.current_fault, "read", reply)
                return False
            state, version = reply.json()["state"], reply.json()["version"]
            if state in FINAL_STATES:
                return True
            official, action = (
                ("clerk.kochi", "verify")
                if state == "submitted"
                else ("secretary.kochi", "approve")
            )
            reply = requests.post(
                f"{url}/actions",
                json={"action": action},
                headers={**platform.as_user(official), "If-Match": f'"{version}"'},
                timeout=CLIENT_TIMEOUT,
            )
        except requests.RequestException:
            self.ledger.note_no_answer(self.bed.current_fault)
            return False
        if reply.status_code == 200:
            with self.ledger.lock:
                self.ledger.decisions += 1
        elif reply.status_code != 409:  # 409: the version moved on; read again
            self.ledger.note_failure(self.bed.current_fault, action, reply)
        return False


# -- faults ------------------------------------------------------------------------------


def restart_rabbitmq(bed: FaultBed, down_seconds: float = 2.0) -> None:
    """Stopped with RPC replies in flight: appends are held at the database
    while the broker stops, then let go, so the applications service's
    workers commit and answer into the outage; the broker stays down until
    one of them has failed to answer (or its process has exited)."""
    with _appends_held(bed) as let_go:
        bed.own.rabbit.stop()
        replies_lost, containers_killed = _logged(bed, REPLY_NOT_SENT), _logged(bed, KILLED)
        let_go()
        wait_for(
            lambda: (
                _logged(bed, REPLY_NOT_SENT) > replies_lost
                or _logged(bed, KILLED) > containers_killed
            ),
            timeout=60,
            interval=0.2,
            message="a reply to fail in the outage (or its container to be killed)",
        )
    _while_down(bed, down_seconds)
    bed.own.rabbit.start()
    _wait_until_serving(bed)


@contextlib.contextmanager
def _appends_held(bed: FaultBed) -> Iterator[Callable[[], None]]:
    """Holds every append to the event store (a lock on the events table
    that inserts wait for) until the stream has at least one waiting;
    yields the function that lets them go."""
    engine = bed.platform.engine("applications")
    holder = engine.connect()
    transaction = holder.begin()
    try:
        holder.execute(sa.text("LOCK TABLE events IN SHARE MODE"))
        wait_for(
            lambda: holder.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one(),
            timeout=30,
            interval=0.1,
            message="an append of the stream to wait at the database",
        )
        yield transaction.rollback
    finally:
        if transaction.is_active:
            transaction.rollback()
        holder.close()
        engine.dispose()


# What a service logs when an RPC reply cannot reach the broker
# (ksmart_common.rpc), and what nameko logs when it kills a container (an
# error escaped one of its threads; the process exits once the container's
# consumers stop, which waits for the broker to come back).
REPLY_NOT_SENT = "reply not sent: the broker is not reachable"
KILLED = "thread exited with error"


def _logged(bed: FaultBed, text: str) -> int:
    """How often the processes' logs (every run of each) say `text`."""
    return sum(
        bed.platform.log(name).count(text)
        for name in bed.own.processes
        if (bed.platform.run_dir / f"{name}.log").exists()
    )


def kill_applications_and_workflow(bed: FaultBed, down_seconds: float = 2.0) -> None:
    bed.own.kill("applications", "relay", "workflow")
    _while_down(bed, down_seconds)
    bed.own.restart("applications", "relay", "workflow")
    _wait_until_serving(bed)


def restart_postgres(bed: FaultBed, down_seconds: float = 2.0) -> None:
    bed.own.postgres.stop("fast")
    _while_down(bed, down_seconds)
    bed.own.postgres.start()
    _wait_until_serving(bed)


def crash_postgres(bed: FaultBed, down_seconds: float = 2.0) -> None:
    """An immediate stop: no checkpoint, crash recovery at start."""
    bed.own.postgres.stop("immediate")
    _while_down(bed, down_seconds)
    bed.own.postgres.start()
    _wait_until_serving(bed)


def _while_down(bed: FaultBed, seconds: float) -> None:
    """Wait out the outage, asking for something meanwhile: whatever else the
    stream happens to send, at least one request meets the outage itself,
    and its answer shows the outage was one (assert_each_fault_was_felt)."""
    deadline = time.monotonic() + seconds
    platform = bed.platform
    with bed.ledger.lock:
        file_ids = list(bed.ledger.accepted.values())[:1]
    # A file if one was accepted yet (the applications service), else the
    # clerk's inbox (the workflow service): both need a service and its
    # database through the broker.
    path = f"/files/{file_ids[0]}" if file_ids else "/inbox"
    try:
        reply = requests.get(
            f"{platform.base_url}/api/v1{path}",
            headers=platform.as_user("clerk.kochi"),
            timeout=CLIENT_TIMEOUT,
        )
    except requests.RequestException:
        bed.ledger.note_no_answer(bed.current_fault)
        bed.ledger.note_probe(bed.current_fault, "no answer")
    else:
        bed.ledger.note_probe(bed.current_fault, str(reply.status_code))
        if reply.status_code != 200:
            bed.ledger.note_failure(bed.current_fault, "read while down", reply)
    time.sleep(max(0.0, deadline - time.monotonic()))


FAULTS = {
    "RabbitMQ restart": restart_rabbitmq,
    "kill -9 applications+relay, workflow": kill_applications_and_workflow,
    "PostgreSQL restart": restart_postgres,
    "PostgreSQL crash (immediate stop)": crash_postgres,
}


def _wait_until_serving(bed: FaultBed, timeout: float = 120) -> None:
    platform = bed.platform
    names = tuple(name for name in bed.own.processes if name != "relay")
    address = platform.env["KSMART_GATEWAY_ADDRESS"]
    deadline = time.monotonic() + timeout
    while not _serving(platform.amqp_uri, address, names):
        supervise(bed)
        if time.monotonic() > deadline:
            raise TimeoutError(f"the platform did not serve again within {timeout}s")
        time.sleep(0.3)
    supervise(bed)


def _serving(amqp_uri: str, address: str, names: tuple[str, ...]) -> bool:
    try:
        return is_ready(amqp_uri, address, names)
    except pika.exceptions.AMQPError:
        return False


def supervise(bed: FaultBed) -> None:
    """What Kubernetes (restartPolicy: Always) or systemd would do: start
    again a process that exited on its own, and write down that it did."""
    for name, process in list(bed.own.processes.items()):
        if process.poll() is not None:
            bed.exits.append(f"{name} exited with {process.returncode} ({bed.current_fault})")
            bed.own.restart(name)


# -- the run and its verdict ---------------------------------------------------------------


@dataclass
class Outcome:
    faults: list[str]
    ledger: Ledger
    files: int = 0
    events: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    half_written: list[str] = field(default_factory=list)
    projection_mismatches: list[str] = field(default_factory=list)
    sms_sent: int = 0
    sms_duplicated: list[str] = field(default_factory=list)
    sms_unsent: list[str] = field(default_factory=list)
    sms_resends_absorbed: int = 0
    seconds_to_converge: float | None = None
    stream_seconds: float = 0.0
    exits: list[str] = field(default_factory=list)
    # RPC replies that met a broker outage in flight (logged by the service).
    replies_not_sent: int = 0
    # Containers nameko killed (an error escaped one of its threads).
    containers_killed: int = 0
    # Every `*.dead` queue on the broker -> the messages in it.
    dead_letter_queues: dict[str, int] = field(default_factory=dict)

    @property
    def dead_lettered(self) -> dict[str, int]:
        return {queue: count for queue, count in self.dead_letter_queues.items() if count}

    def table(self) -> str:
        ledger = self.ledger
        rows = [
            ("faults injected", f"{len(self.faults)}: " + "; ".join(self.faults)),
            ("stream duration", f"{self.stream_seconds:.0f} s"),
            ("submissions accepted (2xx)", len(ledger.accepted)),
            ("decisions accepted", ledger.decisions),
            ("requests refused (503 + Retry-After)", ledger.refused),
            ("requests that met each fault", _per_fault(ledger.felt, self.faults)),
            ("outage probes answered", _probes(ledger.probes)),
            ("requests refused otherwise", _by_window(ledger.bad_refusals)),
            ("requests unanswered (client timeout)", len(ledger.no_answer)),
            ("submissions never accepted", len(ledger.abandoned)),
            ("files / events stored", f"{self.files} / {self.events}"),
            ("lost (accepted, not stored)", len(self.lost)),
            ("duplicated (stored twice)", len(self.duplicated)),
            ("half-written (stored, never accepted)", len(self.half_written)),
            ("projection != stream head or replay", len(self.projection_mismatches)),
            (
                "SMS sent / duplicated / not sent",
                f"{self.sms_sent} / {len(self.sms_duplicated)} / {len(self.sms_unsent)}",
            ),
            ("SMS resends absorbed by the provider", self.sms_resends_absorbed),
            ("processes that exited on their own", "; ".join(self.exits) or "0"),
            ("containers killed by nameko (thread exited with error)", self.containers_killed),
            ("RPC replies caught in flight by the outage", self.replies_not_sent),
            ("dead-lettered messages (*.dead queues)", _dead_letters(self)),
            ("time to converge after the stream", _seconds(self.seconds_to_converge)),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"| {'measure'.ljust(width)} | value", f"|-{'-' * width}-|------"]
        lines += [f"| {name.ljust(width)} | {value}" for name, value in rows]
        return "\n".join(lines)


def _per_fault(felt: Counter, faults: list[str]) -> str:
    return ", ".join(f"{fault}: {felt[fault]}" for fault in dict.fromkeys(faults)) or "-"


def _probes(probes: dict[str, list[str]]) -> str:
    return "; ".join(f"{fault}: {', '.join(answers)}" for fault, answers in probes.items()) or "-"


def _by_window(failures: list[tuple[str, str]]) -> str:
    if not failures:
        return "0"
    counts = Counter(window for window, _ in failures)
    return f"{len(failures)} (" + ", ".join(f"{w}: {n}" for w, n in counts.items()) + ")"


def _dead_letters(outcome: Outcome) -> str:
    queues = len(outcome.dead_letter_queues)
    if not outcome.dead_lettered:
        return f"0 (in {queues} queues)"
    return "; ".join(f"{queue}: {count}" for queue, count in outcome.dead_lettered.items())


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def run(
    bed: FaultBed,
    faults: list[str],
    steady_seconds: float = 3.0,
    converge_timeout: float = 120.0,
) -> Outcome:
    """The stream, with each fault in turn after `steady_seconds` of calm,
    and calm again at the end; then wait for everything to converge."""
    stream = Stream(bed).start()
    started = time.monotonic()
    try:
        for name in faults:
            _steady(bed, steady_seconds)
            bed.current_fault = name
            FAULTS[name](bed)
        _steady(bed, steady_seconds)
    finally:
        stopped = time.monotonic()
        ledger = stream.stop()
    outcome = Outcome(list(faults), ledger, stream_seconds=stopped - started, exits=bed.exits)
    try:
        wait_for(
            lambda: supervise(bed) or _converged(bed, ledger),
            timeout=converge_timeout,
            interval=0.5,
            message="projection and notifications to converge",
        )
        outcome.seconds_to_converge = time.monotonic() - stopped
    except AssertionError:
        pass
    _judge(bed, outcome)
    return outcome


def _steady(bed: FaultBed, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        supervise(bed)
        time.sleep(0.3)


def _stream_heads(conn: sa.Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.text("SELECT stream_id, max(stream_version) FROM events GROUP BY stream_id")
    )
    return {stream_id.removeprefix("file-"): version for stream_id, version in rows}


def _projected_versions(conn: sa.Connection) -> dict[str, int]:
    rows = conn.execute(sa.text("SELECT file_id::text, version FROM files"))
    return dict(rows.all())


def _sms_rows(bed: FaultBed) -> list[sa.Row]:
    with bed.platform.engine("notifications").connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT message_id::text, destination, file_id::text, template, status"
                " FROM messages WHERE channel = 'sms' AND destination = ANY(:phones)"
                " AND file_id IS NOT NULL"
            ),
            {"phones": bed.phones},
        ).all()


def _converged(bed: FaultBed, ledger: Ledger) -> bool:
    with bed.platform.engine("applications").connect() as conn:
        heads = _stream_heads(conn)
    with bed.platform.engine("workflow").connect() as conn:
        projected = _projected_versions(conn)
    if any(projected.get(file_id) != head for file_id, head in heads.items()):
        return False
    rows = _sms_rows(bed)
    if any(row.status not in ("sent", "delivered") for row in rows):
        return False
    # Each approval is told, with its certificate: the notifications caught up.
    told = {(row.file_id, row.template) for row in rows}
    with bed.platform.engine("workflow").connect() as conn:
        approved = conn.execute(
            sa.text("SELECT count(*) FROM files WHERE state = 'approved'")
        ).scalar_one()
    return sum(1 for _, template in told if template == "application_approved") >= approved


def _judge(bed: FaultBed, outcome: Outcome) -> None:
    ledger = outcome.ledger
    platform = bed.platform
    engine = platform.engine("applications")
    store = EventStore(engine)
    try:
        with engine.connect() as conn:
            submitted = conn.execute(
                sa.text(
                    "SELECT stream_id, data->'form'->>'child_name' FROM events"
                    " WHERE event_type = 'ApplicationSubmitted'"
                )
            ).all()
            heads = _stream_heads(conn)
            outcome.events = conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
        outcome.files = len(heads)
        markers = Counter((name or "").removeprefix("Child ") for _, name in submitted if name)
        stored_ids = Counter(stream_id.removeprefix("file-") for stream_id, _ in submitted)
        for marker, file_id in ledger.accepted.items():
            if markers[marker] == 0 or stored_ids[file_id] == 0:
                outcome.lost.append(f"{marker} (file {file_id})")
            elif markers[marker] > 1 or stored_ids[file_id] > 1:
                outcome.duplicated.append(f"{marker} x{markers[marker]} (file {file_id})")
        outcome.half_written = [marker for marker in markers if marker not in ledger.accepted]

        with platform.engine("workflow").connect() as conn:
            projections = {
                file_id: (version, projected)
                for file_id, version, projected in conn.execute(
                    sa.text("SELECT file_id::text, version, projected FROM files")
                )
            }
        for file_id, head in heads.items():
            version, projected = projections.get(file_id, (None, None))
            if version != head:
                outcome.projection_mismatches.append(f"{file_id}: v{version}, head {head}")
                continue
            replayed = replay(store.read_stream(f"file-{file_id}"))
            if FileState.from_dict(projected).to_dict() != replayed.to_dict():
                outcome.projection_mismatches.append(f"{file_id}: differs from a replay")
    finally:
        store.close()
        engine.dispose()

    rows = _sms_rows(bed)
    received = [m for phone in bed.phones for m in bed.inbox.sms.messages(phone)]
    at_phone = Counter(message["reference"] for message in received)
    texts = Counter((message["to"], message["text"]) for message in received)
    per_step = Counter((row.file_id, row.template) for row in rows)
    outcome.sms_sent = sum(1 for row in rows if row.message_id in at_phone)
    outcome.sms_duplicated = [f"reference {ref} x{n}" for ref, n in at_phone.items() if n > 1]
    outcome.sms_duplicated += [f"{to}: same text x{n}" for (to, _), n in texts.items() if n > 1]
    outcome.sms_duplicated += [f"{step} logged x{n}" for step, n in per_step.items() if n > 1]
    outcome.sms_unsent = [
        f"{row.message_id} {row.template} {row.status}"
        for row in rows
        if row.message_id not in at_phone or row.status not in ("sent", "delivered")
    ]
    outcome.sms_resends_absorbed = bed.inbox.sms.duplicates
    outcome.replies_not_sent = _logged(bed, REPLY_NOT_SENT)
    outcome.containers_killed = _logged(bed, KILLED)
    outcome.dead_letter_queues = _dead_letter_queues(bed)


def _dead_letter_queues(bed: FaultBed) -> dict[str, int]:
    """Every queue named `*.dead` on the suite's own broker, with the
    messages in it (ready or not acknowledged)."""
    listed = bed.own.rabbit.rabbitmqctl(
        "list_queues", "name", "messages", "--no-table-headers"
    ).stdout.decode()
    queues = {}
    for line in listed.splitlines():
        name, _, count = line.strip().rpartition("\t")
        if name.endswith(".dead"):
            queues[name] = int(count)
    return queues


def assert_no_loss_or_duplicate(outcome: Outcome) -> None:
    """Every verdict at once, so one run shows everything that went wrong."""
    problems = {
        "lost": outcome.lost,
        "duplicated": outcome.duplicated,
        "half-written": outcome.half_written,
        "projection": outcome.projection_mismatches,
        "sms duplicated": outcome.sms_duplicated,
        "sms not sent": outcome.sms_unsent,
        "never accepted": outcome.ledger.abandoned,
        "failed before any fault": [
            said for window, said in outcome.ledger.bad_refusals if window not in outcome.faults
        ],
    }
    found = {name: items[:10] for name, items in problems.items() if items}
    assert outcome.seconds_to_converge is not None, f"never converged; {found}"
    assert not found, found
    assert_every_stream_carried_work(outcome)


def assert_every_stream_carried_work(outcome: Outcome) -> None:
    """Submissions, decisions and SMS all flowed: a verdict of "nothing lost"
    over a stream that carried nothing would prove nothing."""
    carried = {
        "submissions accepted": len(outcome.ledger.accepted),
        "decisions accepted": outcome.ledger.decisions,
        "events stored": outcome.events,
        "SMS sent": outcome.sms_sent,
    }
    assert all(carried.values()), carried


def assert_each_fault_was_felt(outcome: Outcome, fault: str) -> None:
    """The fault happened as far as a client can tell: requests met it (503
    with Retry-After, or no answer), and the probe sent into its outage was
    never answered 200."""
    assert fault in outcome.faults
    assert outcome.ledger.felt[fault] > 0, f"no request met {fault}"
    answers = outcome.ledger.probes.get(fault, [])
    assert answers, f"no probe was sent during {fault}"
    assert "200" not in answers, f"the probe during {fault} was answered: {answers}"


def assert_refusals_were_503_with_retry_after(outcome: Outcome, fault: str) -> None:
    """Requests that failed during (or recovering from) `fault` were all
    refused with 503 and Retry-After."""
    assert fault in outcome.faults
    failures = [said for window, said in outcome.ledger.bad_refusals if window == fault]
    failures += ["no answer"] * outcome.ledger.no_answer.count(fault)
    assert not failures, failures[:10]


def assert_no_process_exited_on_its_own(outcome: Outcome) -> None:
    """No process exited (nor had its container killed, which ends the
    process), though a RabbitMQ restart caught replies in flight."""
    assert not outcome.exits, outcome.exits
    assert not outcome.containers_killed, f"{outcome.containers_killed} containers killed"
    if "RabbitMQ restart" in outcome.faults:
        assert outcome.replies_not_sent, "no RPC reply was in flight when the broker went down"


def assert_nothing_dead_lettered(outcome: Outcome) -> None:
    """Every `*.dead` queue is empty: the faults dead-lettered nothing."""
    assert outcome.dead_letter_queues, "no dead-letter queue found on the broker"
    assert not outcome.dead_lettered, outcome.dead_lettered
