"""The applications service's command handlers: plain functions over the
event store. They load a file by replaying its stream with the shared
projector, let the domain decide, and append with the version they read, so
two officials deciding at once can never both win."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ksmart_common.canonical import canonical_json
from ksmart_common.domain import file as files
from ksmart_common.domain.file import Actor, FileState
from ksmart_common.envelope import Envelope, file_stream_id
from ksmart_common.errors import (
    Forbidden,
    IdempotencyKeyReused,
    NotFound,
    VersionConflict,
)
from ksmart_common.eventstore import EventStore

# Files created with an Idempotency-Key get an id derived from the caller and
# the key, so a retried submission lands on the same stream and is found.
IDEMPOTENT_FILE_NAMESPACE = uuid.UUID("5b8a3f2e-9d1c-4e57-a0c4-6b736d617274")


def event_metadata(actor: Actor, request: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    request_id = request.get("request_id")
    return {
        "actor_id": actor.actor_id,
        "actor_roles": list(actor.roles),
        "local_body": actor.local_body,
        "correlation_id": request.get("correlation_id") or request_id or str(uuid.uuid4()),
        "causation_id": request_id,
        "request_id": request_id,
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
    service_code: str,
    local_body: str,
    form: Mapping[str, Any],
    actor: Actor,
    request: Mapping[str, Any],
) -> tuple[FileState, bool]:
    """File an application. Returns the file and whether it was created now
    (False when an Idempotency-Key retry found the file it made before)."""
    key = request.get("idempotency_key")
    fingerprint = hashlib.sha256(
        canonical_json({"service": service_code, "local_body": local_body, "form": dict(form)})
    ).hexdigest()
    if key:
        file_id = str(uuid.uuid5(IDEMPOTENT_FILE_NAMESPACE, f"{actor.actor_id}\n{key}"))
        earlier = store.read_stream(file_stream_id(file_id))
        if earlier:
            return _same_request_or_refuse(earlier, fingerprint), False
    else:
        file_id = str(uuid.uuid4())
    definition = get_definition(service_code)
    events = files.submit_application(file_id, definition, local_body, actor, form)
    metadata = event_metadata(actor, request, request_fingerprint=fingerprint)
    try:
        envelopes = store.append(file_stream_id(file_id), events, 0, metadata)
    except VersionConflict:
        if not key:
            raise
        # The same key raced itself: the other request stored first.
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
) -> FileState:
    state = load_file(store, file_id)
    if not files.may_read(state, actor):
        # Not Forbidden: a file outside one's reach is not even confirmed to exist.
        raise NotFound(f"no file {file_id}")
    if expected_version is not None and expected_version != state.version:
        raise VersionConflict(
            f"the file is at version {state.version}, not {expected_version}",
            [{"field": "expected_version", "message": f"current version is {state.version}"}],
        )
    events = files.take_action(state, action, actor, remarks)
    envelopes = store.append(state.stream_id, events, state.version, event_metadata(actor, request))
    return files.replay(envelopes, state)


def read_file(store: EventStore, file_id: str, actor: Actor) -> FileState:
    state = load_file(store, file_id)
    if not files.may_read(state, actor):
        raise NotFound(f"no file {file_id}")
    return state


def require_auditor(actor: Actor) -> None:
    if files.AUDITOR_ROLE not in actor.roles:
        raise Forbidden("only an auditor may read the raw event log")
