"""The applications service's command handlers: plain functions over the
event store, each taking one command (command_types.py). A command on a file
goes through decide_and_append: the file is loaded by replaying its stream
with the shared projector, the domain decides, and what it decided is
appended with the version read, so two officials deciding at once can never
both win. A submission makes a new stream instead (submit)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ksmart_applications import certificate_keys as certificates
from ksmart_applications import log_entries
from ksmart_applications.certificate_keys import CertificateKeys
from ksmart_applications.command_types import (
    Application,
    AssignFile,
    AttachDocument,
    EscalateFile,
    FileCommand,
    FileForCitizen,
    PaymentCallback,
    RecordPayment,
    RequestContext,
    SubmitApplication,
    TakeAction,
)
from ksmart_applications.payments import PaymentProvider
from ksmart_applications.uploads import find_uploads
from ksmart_common.canonical import canonical_json
from ksmart_common.domain import file as files
from ksmart_common.domain.file import FILE_NUMBER_KEY, Actor, FileState
from ksmart_common.domain.local_time import IST
from ksmart_common.domain.roles import CITIZEN
from ksmart_common.domain.vocabulary import FILE_NUMBER_DIGITS, file_number_series
from ksmart_common.envelope import Envelope, NewEvent, file_stream_id
from ksmart_common.errors import (
    ActionNotAllowed,
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    VersionConflict,
)
from ksmart_common.eventstore import EventStore, NumberRequest

# Files created with an Idempotency-Key get an id derived from the caller and
# the key, so a retried submission lands on the same stream and is found. So
# do files of a request the gateway sent with a command id: RabbitMQ delivers
# a request again when the reply to it could not be sent (the broker went
# away), and that second delivery must find the file, not make another.
IDEMPOTENT_FILE_NAMESPACE = uuid.UUID("5b8a3f2e-9d1c-4e57-a0c4-6b736d617274")


def event_metadata(actor: Actor, request: RequestContext, **extra: Any) -> dict[str, Any]:
    request_id = request.request_id
    return {
        "actor_id": actor.actor_id,
        "actor_roles": list(actor.roles),
        "local_body": actor.local_body,
        "wards": list(actor.wards),
        "correlation_id": request.correlation_id or request_id or str(uuid.uuid4()),
        "causation_id": request_id,
        "request_id": request_id,
        # The gateway's id for the command: a second delivery of it finds it here.
        **({"command_id": request.command_id} if request.command_id else {}),
        **extra,
    }


def load_file(store: EventStore, file_id: str) -> FileState:
    return _load_with_events(store, file_id)[0]


def _load_with_events(store: EventStore, file_id: str) -> tuple[FileState, list[Envelope]]:
    events = store.read_stream(file_stream_id(file_id))
    state = files.replay(events)
    if state is None:
        raise NotFound(f"no file {file_id}")
    return state, events


def decide_and_append(
    store: EventStore,
    command: FileCommand,
    decide: Callable[[FileState], list[NewEvent]],
    *,
    expected_version: int | None,
) -> FileState:
    """Every command on a file, one way: load the file by replaying its
    stream; refuse an actor outside its reach (NotFound: a file one may not
    read is not even confirmed to exist) and a stale `expected_version`
    (None: the caller named no version); let the domain decide; append what
    it decided with the version read. Returns the file as it then is.

    A request the gateway gave a command id and that is already stored (its
    events carry the id) decides nothing again: RabbitMQ delivers a request
    again when its reply could not be sent, and that delivery is answered
    with the file as it is."""
    stored = store.read_stream(file_stream_id(command.file_id))
    state = files.replay(stored)
    if state is None or (command.checks_reach and not files.may_read(state, command.actor)):
        raise NotFound(f"no file {command.file_id}")
    command_id = command.request.command_id
    if command_id and any(event.metadata.get("command_id") == command_id for event in stored):
        return state
    if expected_version is not None and expected_version != state.version:
        raise VersionConflict.at(state.version, expected_version)
    events = decide(state)
    if not events:
        return state
    metadata = event_metadata(command.actor, command.request)
    envelopes = store.append(state.stream_id, events, state.version, metadata)
    return files.replay(envelopes, state)


def submit(
    store: EventStore,
    command: SubmitApplication,
    *,
    latest_definition: Callable[[str], Mapping[str, Any]],
    local_body_entry: Callable[[str], Mapping[str, Any] | None],
) -> tuple[FileState, bool]:
    """File an application under the service's latest definition, the local
    body checked against the directory (local_body_entry: its entry, or
    None). Returns the file and whether it was created now (False when an
    Idempotency-Key retry, or a second delivery of the command, found the
    file it made before)."""
    actor, request = command.actor, command.request
    fingerprint = _fingerprint(command)
    key, command_id = request.idempotency_key, request.command_id
    scope = f"{actor.actor_id}\n{key}" if key else f"command\n{command_id}" if command_id else None
    if scope:
        file_id = str(uuid.uuid5(IDEMPOTENT_FILE_NAMESPACE, scope))
        earlier = store.read_stream(file_stream_id(file_id))
        if earlier:
            return _same_request_or_refuse(earlier, fingerprint), False
    else:
        file_id = str(uuid.uuid4())
    definition = latest_definition(command.service_code)
    uploads = find_uploads(store.engine, actor.actor_id, command.documents)
    events = files.submit_application(
        file_id,
        definition,
        command.local_body,
        actor,
        command.form,
        uploads,
        request.lang,
        local_body_entry(command.local_body),
    )
    metadata = event_metadata(actor, request, request_fingerprint=fingerprint)
    try:
        return _append_new_file(store, file_id, events, metadata, command, definition), True
    except VersionConflict:
        if not scope:
            raise
        # The same key (or command) raced itself: the other request stored first.
        earlier = store.read_stream(file_stream_id(file_id))
        return _same_request_or_refuse(earlier, fingerprint), False


# (consent id, code, consume) -> {"citizen_id", "filed_by"}: the identity
# service's answer on a citizen's consent (InvalidInput naming what is wrong).
VerifyConsent = Callable[[str, str, bool], Mapping[str, Any]]


def file_for_citizen(
    store: EventStore,
    command: FileForCitizen,
    *,
    latest_definition: Callable[[str], Mapping[str, Any]],
    local_body_entry: Callable[[str], Mapping[str, Any] | None],
    verify_consent: VerifyConsent,
) -> tuple[FileState, bool]:
    """Counter staff file in a citizen's name, the citizen consenting with a
    one-time code. Returns the file and whether it was created now.

    - Who: a clerk to their own body, an Akshaya operator to any
      (files.check_counter_filing), refused before the consent is tried.
    - One consent, one file: the file's id derives from the consent's, so
      the append's expected version 0 lets a consent make one file however
      requests race, and a retry of the same request (its reply lost) finds
      the file it made. The same consent with another application, or from
      another operator, is refused.
    - Every problem at once: the application's problems and the consent's
      are answered together. The consent is used up only when the
      application has none (a right code stays usable while the counter
      corrects the form; a wrong one counts against its five tries).
    - The event's metadata names the filer as its actor; its data names the
      citizen as the applicant and records `filed_by` (who, counter role,
      office, consent id). Documents are the filer's uploads."""
    actor, request = command.actor, command.request
    files.check_counter_filing(actor, command.local_body)
    fingerprint = _fingerprint(command)
    consent_id = command.consent.consent_id
    file_id = str(uuid.uuid5(IDEMPOTENT_FILE_NAMESPACE, f"consent\n{consent_id}"))
    earlier = store.read_stream(file_stream_id(file_id))
    if earlier:
        return _consent_used(earlier, actor, fingerprint), False
    definition = latest_definition(command.service_code)
    uploads = find_uploads(store.engine, actor.actor_id, command.documents)
    directory_entry = local_body_entry(command.local_body)
    problems = files.application_problems(
        definition, command.local_body, command.form, uploads, request.lang, directory_entry
    )
    consent: Mapping[str, Any] = {}
    try:
        consent = verify_consent(consent_id, command.consent.code, not problems)
    except InvalidInput as refused:
        problems = [*problems, *refused.problems]
    if problems:
        raise InvalidInput(files.incomplete(len(problems), request.lang), problems)
    events = files.submit_application(
        file_id,
        definition,
        command.local_body,
        Actor(consent["citizen_id"], (CITIZEN,)),
        command.form,
        uploads,
        request.lang,
        directory_entry,
        filed_by=consent["filed_by"],
    )
    metadata = event_metadata(actor, request, request_fingerprint=fingerprint)
    return _append_new_file(store, file_id, events, metadata, command, definition), True


def _fingerprint(command: Application) -> str:
    """What an application asked for, to tell a retry from another request."""
    return hashlib.sha256(
        canonical_json(
            {
                "service": command.service_code,
                "local_body": command.local_body,
                "form": command.form,
                "documents": command.documents,
            }
        )
    ).hexdigest()


def _append_new_file(
    store: EventStore,
    file_id: str,
    events: list[NewEvent],
    metadata: dict[str, Any],
    command: Application,
    definition: Mapping[str, Any],
) -> FileState:
    """Store a new file's first events with its number (VersionConflict if
    its stream exists already)."""
    # File numbers count per calendar year in Kerala's time.
    year = datetime.now(IST).year
    number = NumberRequest(
        file_number_series(command.local_body, definition["short_code"], year),
        FILE_NUMBER_KEY,
        FILE_NUMBER_DIGITS,
    )
    envelopes = store.append(file_stream_id(file_id), events, 0, metadata, number)
    return files.replay(envelopes)


def _consent_used(earlier: list[Envelope], actor: Actor, fingerprint: str) -> FileState:
    """A consent that made a file already: the same operator's same request
    again finds that file; anything else is refused, and another operator
    is not told the consent exists."""
    first = earlier[0]
    if first.metadata.get("actor_id") != actor.actor_id:
        raise InvalidInput(
            "the citizen's consent is not given",
            [{"field": "consent.consent_id", "message": "no such consent was requested"}],
        )
    if first.metadata.get("request_fingerprint") != fingerprint:
        number = first.data.get(FILE_NUMBER_KEY)
        raise InvalidInput(
            "the citizen's consent is not given",
            [
                {
                    "field": "consent.code",
                    "message": f"this consent was used already, for file {number};"
                    " ask for a new one",
                }
            ],
        )
    return files.replay(earlier)


def _same_request_or_refuse(earlier: list[Envelope], fingerprint: str) -> FileState:
    """The file an earlier request with the same key made, if it was this request."""
    if earlier[0].metadata.get("request_fingerprint") != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used for a different application",
            [{"field": "Idempotency-Key", "message": "use a new key for a new application"}],
        )
    return files.replay(earlier)


def take_action(
    store: EventStore,
    command: TakeAction,
    *,
    pinned_definition: Callable[[str], Mapping[str, Any]],
    certificate_keys: CertificateKeys,
) -> FileState:
    """A decision on a file. A grant of a service that gives a certificate
    issues it in the same append (signed with the active certificate key),
    so a granted file never lacks it; corrected answers are checked against
    the definition the file was filed under (pinned_definition: by hash)."""

    def decide(state: FileState) -> list[NewEvent]:
        definition = None
        if command.answers or _grants(state, command.action):
            definition = pinned_definition(state.definition_hash)
        events = files.take_action(
            state,
            command.action,
            command.actor,
            command.remarks,
            command.answers,
            definition,
            command.request.lang,
        )
        if definition is not None:
            key = certificate_keys.active_key(store.engine)
            events += files.certificate_event(
                state,
                command.action,
                definition,
                lambda payload: certificates.sign(key, payload),
                key.kid,
                datetime.now(UTC),
            )
        return events

    return decide_and_append(store, command, decide, expected_version=command.expected_version)


def _grants(state: FileState, action_name: str) -> bool:
    action = state.machine.actions.get(action_name)
    return action is not None and state.machine.grants(action)


def certified_file(store: EventStore, file_id: str, actor: Actor) -> FileState:
    """A file the actor may read that holds a certificate."""
    state = read_file(store, file_id, actor)
    if state.certificate is None:
        raise NotFound(f"file {file_id} has no certificate")
    return state


def certificate_by_number(store: EventStore, number: str) -> dict | None:
    """The certificate issued under a file number, if any (anyone may ask:
    a certificate is shown to be checked), and its issuing event's entry in
    the transparency log (log_entries): {"certificate", "log_entry"}."""
    with store.engine.connect() as conn:
        stream_id = conn.execute(
            sa.text(
                "SELECT stream_id FROM stream_numbers WHERE series = :series AND number = :number"
            ),
            _series_and_number(number),
        ).scalar()
    if stream_id is None:
        return None
    events = store.read_stream(stream_id)
    state = files.replay(events)
    if not state or not state.certificate:
        return None
    return {"certificate": dict(state.certificate), "log_entry": _certificate_entry(events)}


def _certificate_entry(events: list[Envelope]) -> dict | None:
    issued = log_entries.certificate_event(events)
    return None if issued is None else log_entries.log_entry(issued)


def _series_and_number(number: str) -> dict[str, Any]:
    series, _, sequence = number.rpartition("/")
    # ASCII digits only: "²".isdigit() is true, but no int.
    return {"series": series, "number": int(sequence) if SEQUENCE.fullmatch(sequence) else -1}


SEQUENCE = re.compile(r"[0-9]{1,9}")


def read_file(store: EventStore, file_id: str, actor: Actor) -> FileState:
    return read_file_with_events(store, file_id, actor)[0]


def read_file_with_events(
    store: EventStore, file_id: str, actor: Actor
) -> tuple[FileState, list[Envelope]]:
    state, events = _load_with_events(store, file_id)
    if not files.may_read(state, actor):
        raise NotFound(f"no file {file_id}")
    return state, events


def file_view(store: EventStore, file_id: str, actor: Actor) -> dict[str, Any]:
    """The file as its reader is shown it, with its submission's and its
    certificate's entries in the transparency log (log_entries)."""
    state, events = read_file_with_events(store, file_id, actor)
    return {**state.view(), "log_entries": log_entries.file_log_entries(events)}


def require_auditor(actor: Actor) -> None:
    if files.AUDITOR_ROLE not in actor.roles:
        raise Forbidden("only an auditor may read the raw event log")


def attach_document(
    store: EventStore,
    command: AttachDocument,
    *,
    pinned_definition: Callable[[str], Mapping[str, Any]],
) -> FileState:
    """Attach one of the applicant's uploads to their open file, as the
    definition the file was filed under (pinned_definition: by hash)
    describes that document."""

    def decide(state: FileState) -> list[NewEvent]:
        definition = pinned_definition(state.definition_hash)
        uploads = find_uploads(store.engine, command.actor.actor_id, {command.code: command.sha256})
        return files.attach_document(
            state,
            definition,
            command.code,
            uploads[command.code],
            command.actor,
            command.request.lang,
        )

    return decide_and_append(store, command, decide, expected_version=None)


def assign(store: EventStore, command: AssignFile) -> FileState:
    """Hand the file to the official the command names."""

    def decide(state: FileState) -> list[NewEvent]:
        return files.assign(state, command.assignee, command.actor)

    return decide_and_append(store, command, decide, expected_version=None)


def escalate(store: EventStore, command: EscalateFile) -> FileState:
    """Escalate an overdue file, deciding again from its own events; the
    version the timer saw is the expected version, so two timers cannot
    both escalate it."""

    def decide(state: FileState) -> list[NewEvent]:
        return files.escalate(state, command.now)

    return decide_and_append(store, command, decide, expected_version=command.seen_version)


def document_for_reader(store: EventStore, file_id: str, code: str, actor: Actor) -> dict:
    """The upload filed as document `code` of a file the actor may read."""
    state = read_file(store, file_id, actor)
    document = state.documents.get(code)
    if document is None:
        raise NotFound(f"file {file_id} has no document {code!r}")
    return dict(document)


def start_payment(
    store: EventStore,
    provider: PaymentProvider | None,
    file_id: str,
    actor: Actor,
    return_url: str | None = None,
) -> dict:
    """Ask the provider for a payment of the fee due on the applicant's file;
    the provider sends the citizen back to return_url (the gateway allowed
    its origin)."""
    state = read_file(store, file_id, actor)
    if actor.actor_id != state.applicant_id:
        raise Forbidden("only the applicant pays the file's fee")
    if state.fee_due_paise == 0:
        raise ActionNotAllowed(
            "no fee is due on this file", [{"field": "fee", "message": "nothing to pay"}]
        )
    if provider is None:
        raise ServiceUnavailable("payments are not configured on this platform")
    payment = provider.create_payment(
        state.file_id, state.file_number or state.file_id, state.fee_due_paise, return_url
    )
    return {
        "payment_id": payment.payment_id,
        "provider": payment.provider,
        "amount_paise": payment.amount_paise,
        "checkout_url": payment.checkout_url,
    }


def record_payment(
    store: EventStore, provider: PaymentProvider | None, callback: PaymentCallback
) -> dict:
    """A provider's signed callback: FeePaid once the payment is captured.
    A repeated callback for a payment already counted changes nothing."""
    if provider is None:
        raise ServiceUnavailable("payments are not configured on this platform")
    notice = provider.parse_callback(callback.body.encode("utf-8"), callback.signature)
    if notice.status != "captured":
        return {"recorded": False, "status": notice.status}
    try:
        uuid.UUID(notice.file_id)
    except ValueError as error:
        raise InvalidInput(
            "the callback names no file", [{"field": "file_id", "message": "not a file id"}]
        ) from error
    payment = RecordPayment(
        file_id=notice.file_id,
        payment_id=notice.payment_id,
        provider=notice.provider,
        amount_paise=notice.amount_paise,
        request=callback.request,
    )
    recorded: list[NewEvent] = []

    def decide(state: FileState) -> list[NewEvent]:
        recorded.extend(
            files.record_payment(state, payment.payment_id, payment.provider, payment.amount_paise)
        )
        return recorded

    state = decide_and_append(store, payment, decide, expected_version=None)
    return {"recorded": bool(recorded), "status": notice.status, "file_id": state.file_id}
