"""The applications service's command handlers: plain functions over the
event store. They load a file by replaying its stream with the shared
projector, let the domain decide, and append with the version they read, so
two officials deciding at once can never both win."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ksmart_applications import certificate_keys as certificates
from ksmart_applications.certificate_keys import CertificateKeys
from ksmart_applications.payments import PaymentProvider
from ksmart_applications.uploads import find_uploads
from ksmart_common.canonical import canonical_json
from ksmart_common.domain import file as files
from ksmart_common.domain.file import FILE_NUMBER_KEY, Actor, FileState
from ksmart_common.domain.intake import language
from ksmart_common.domain.local_time import IST
from ksmart_common.domain.vocabulary import FILE_NUMBER_DIGITS, file_number_series
from ksmart_common.envelope import Envelope, file_stream_id
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


def event_metadata(actor: Actor, request: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    request_id = request.get("request_id")
    return {
        "actor_id": actor.actor_id,
        "actor_roles": list(actor.roles),
        "local_body": actor.local_body,
        "wards": list(actor.wards),
        "correlation_id": request.get("correlation_id") or request_id or str(uuid.uuid4()),
        "causation_id": request_id,
        "request_id": request_id,
        # The gateway's id for the command: a second delivery of it finds it here.
        **({"command_id": request["command_id"]} if request.get("command_id") else {}),
        **extra,
    }


def load_file(store: EventStore, file_id: str) -> FileState:
    state = files.replay(store.read_stream(file_stream_id(file_id)))
    if state is None:
        raise NotFound(f"no file {file_id}")
    return state


def submit(
    store: EventStore,
    get_definition: Callable[[str], Mapping[str, Any]],
    get_local_body: Callable[[str], Mapping[str, Any] | None],
    service_code: str,
    local_body: str,
    form: Mapping[str, Any],
    documents: Mapping[str, str],
    actor: Actor,
    request: Mapping[str, Any],
) -> tuple[FileState, bool]:
    """File an application; `documents` maps document codes to the sha256
    of the applicant's uploads. Returns the file and whether it was created
    now (False when an Idempotency-Key retry found the file it made before)."""
    key = request.get("idempotency_key")
    fingerprint = hashlib.sha256(
        canonical_json(
            {
                "service": service_code,
                "local_body": local_body,
                "form": form,
                "documents": documents,
            }
        )
    ).hexdigest()
    command_id = request.get("command_id")
    scope = f"{actor.actor_id}\n{key}" if key else f"command\n{command_id}" if command_id else None
    if scope:
        file_id = str(uuid.uuid5(IDEMPOTENT_FILE_NAMESPACE, scope))
        earlier = store.read_stream(file_stream_id(file_id))
        if earlier:
            return _same_request_or_refuse(earlier, fingerprint), False
    else:
        file_id = str(uuid.uuid4())
    definition = get_definition(service_code)
    uploads = find_uploads(store.engine, actor.actor_id, documents)
    lang = language(request.get("lang"))
    events = files.submit_application(
        file_id, definition, local_body, actor, form, uploads, lang, get_local_body(local_body)
    )
    metadata = event_metadata(actor, request, request_fingerprint=fingerprint)
    # File numbers count per calendar year in Kerala's time.
    year = datetime.now(IST).year
    number = NumberRequest(
        file_number_series(local_body, definition["short_code"], year),
        FILE_NUMBER_KEY,
        FILE_NUMBER_DIGITS,
    )
    try:
        envelopes = store.append(file_stream_id(file_id), events, 0, metadata, number)
    except VersionConflict:
        if not scope:
            raise
        # The same key (or command) raced itself: the other request stored first.
        earlier = store.read_stream(file_stream_id(file_id))
        return _same_request_or_refuse(earlier, fingerprint), False
    return files.replay(envelopes), True


def _same_request_or_refuse(earlier: list[Envelope], fingerprint: str) -> FileState:
    """The file an earlier request with the same key made, if it was this request."""
    if earlier[0].metadata.get("request_fingerprint") != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used for a different application",
            [{"field": "Idempotency-Key", "message": "use a new key for a new application"}],
        )
    return files.replay(earlier)


def act(
    store: EventStore,
    file_id: str,
    action: str,
    remarks: str | None,
    expected_version: int | None,
    actor: Actor,
    request: Mapping[str, Any],
    answers: Mapping[str, Any] | None = None,
    get_definition_by_hash: Callable[[str], Mapping[str, Any]] | None = None,
    certificate_keys: CertificateKeys | None = None,
) -> FileState:
    stored = store.read_stream(file_stream_id(file_id))
    state = files.replay(stored)
    if state is None or not files.may_read(state, actor):
        # Not Forbidden: a file outside one's reach is not even confirmed to exist.
        raise NotFound(f"no file {file_id}")
    command_id = request.get("command_id")
    if command_id and any(event.metadata.get("command_id") == command_id for event in stored):
        # This very request was delivered before and decided: RabbitMQ
        # delivers it again when its reply could not be sent.
        return state
    if expected_version is not None and expected_version != state.version:
        raise VersionConflict(
            f"the file is at version {state.version}, not {expected_version}",
            [{"field": "expected_version", "message": f"current version is {state.version}"}],
        )
    definition = None
    if get_definition_by_hash is not None and (answers or _grants(state, action)):
        definition = get_definition_by_hash(state.definition_hash)
    lang = language(request.get("lang"))
    events = files.take_action(state, action, actor, remarks, answers, definition, lang)
    if definition is not None and certificate_keys is not None:
        key = certificate_keys.active_key(store.engine)
        events += files.certificate_event(
            state,
            action,
            definition,
            lambda payload: certificates.sign(key, payload),
            key.kid,
            datetime.now(UTC),
        )
    envelopes = store.append(state.stream_id, events, state.version, event_metadata(actor, request))
    return files.replay(envelopes, state)


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
    a certificate is shown to be checked)."""
    with store.engine.connect() as conn:
        stream_id = conn.execute(
            sa.text(
                "SELECT stream_id FROM stream_numbers WHERE series = :series AND number = :number"
            ),
            _series_and_number(number),
        ).scalar()
    if stream_id is None:
        return None
    state = files.replay(store.read_stream(stream_id))
    return dict(state.certificate) if state and state.certificate else None


def _series_and_number(number: str) -> dict[str, Any]:
    series, _, sequence = number.rpartition("/")
    # ASCII digits only: "²".isdigit() is true, but no int.
    return {"series": series, "number": int(sequence) if SEQUENCE.fullmatch(sequence) else -1}


SEQUENCE = re.compile(r"[0-9]{1,9}")


def read_file(store: EventStore, file_id: str, actor: Actor) -> FileState:
    state = load_file(store, file_id)
    if not files.may_read(state, actor):
        raise NotFound(f"no file {file_id}")
    return state


def require_auditor(actor: Actor) -> None:
    if files.AUDITOR_ROLE not in actor.roles:
        raise Forbidden("only an auditor may read the raw event log")


def attach(
    store: EventStore,
    get_definition_by_hash: Callable[[str], Mapping[str, Any]],
    file_id: str,
    code: str,
    sha256: str,
    actor: Actor,
    request: Mapping[str, Any],
) -> FileState:
    """Attach one of the applicant's uploads to their open file, as the
    definition the file was filed under describes that document."""
    state = read_file(store, file_id, actor)
    definition = get_definition_by_hash(state.definition_hash)
    upload = find_uploads(store.engine, actor.actor_id, {code: sha256})[code]
    lang = language(request.get("lang"))
    events = files.attach_document(state, definition, code, upload, actor, lang)
    envelopes = store.append(state.stream_id, events, state.version, event_metadata(actor, request))
    return files.replay(envelopes, state)


def assign(
    store: EventStore,
    file_id: str,
    assignee: Actor,
    actor: Actor,
    request: Mapping[str, Any],
) -> FileState:
    state = read_file(store, file_id, actor)
    events = files.assign(state, assignee, actor)
    envelopes = store.append(state.stream_id, events, state.version, event_metadata(actor, request))
    return files.replay(envelopes, state)


# The workflow service's escalation timer acts as this actor.
ESCALATION_TIMER = Actor("workflow-escalation-timer", (files.SYSTEM,))


def escalate(store: EventStore, file_id: str, seen_version: int, now: datetime) -> FileState:
    """Escalate an overdue file, deciding again from its own events; the
    version the timer saw is the expected version, so two timers cannot
    both escalate it."""
    state = load_file(store, file_id)
    if state.version != seen_version:
        raise VersionConflict(
            f"the file is at version {state.version}, not {seen_version}",
            [{"field": "expected_version", "message": f"current version is {state.version}"}],
        )
    events = files.escalate(state, now)
    metadata = event_metadata(ESCALATION_TIMER, {"correlation_id": f"escalation-{file_id}"})
    envelopes = store.append(state.stream_id, events, seen_version, metadata)
    return files.replay(envelopes, state)


def document_for_reader(store: EventStore, file_id: str, code: str, actor: Actor) -> dict:
    """The upload filed as document `code` of a file the actor may read."""
    state = read_file(store, file_id, actor)
    document = state.documents.get(code)
    if document is None:
        raise NotFound(f"file {file_id} has no document {code!r}")
    return dict(document)


def start_payment(
    store: EventStore, provider: PaymentProvider | None, file_id: str, actor: Actor
) -> dict:
    """Ask the provider for a payment of the fee due on the applicant's file."""
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
        state.file_id, state.file_number or state.file_id, state.fee_due_paise
    )
    return {
        "payment_id": payment.payment_id,
        "provider": payment.provider,
        "amount_paise": payment.amount_paise,
        "checkout_url": payment.checkout_url,
    }


def record_payment(
    store: EventStore,
    provider: PaymentProvider | None,
    body: str,
    signature: str | None,
    request: Mapping[str, Any],
) -> dict:
    """A provider's signed callback: FeePaid once the payment is captured.
    A repeated callback for a payment already counted changes nothing."""
    if provider is None:
        raise ServiceUnavailable("payments are not configured on this platform")
    notice = provider.parse_callback(body.encode("utf-8"), signature)
    if notice.status != "captured":
        return {"recorded": False, "status": notice.status}
    try:
        uuid.UUID(notice.file_id)
    except ValueError as error:
        raise InvalidInput(
            "the callback names no file", [{"field": "file_id", "message": "not a file id"}]
        ) from error
    state = load_file(store, notice.file_id)
    events = files.record_payment(state, notice.payment_id, notice.provider, notice.amount_paise)
    if events:
        payer = Actor(f"payment-provider:{notice.provider}", (files.PAYMENT_PROVIDER,))
        store.append(state.stream_id, events, state.version, event_metadata(payer, request))
    return {"recorded": bool(events), "status": notice.status, "file_id": state.file_id}
