"""The applications service: the event store's only writer.

Entry points are thin: they turn RPC arguments (JSON, named as the gateway
and the workflow service call them) into typed commands (command_types.py)
and call the command handlers in commands.py with the service's
dependencies. Publication to RabbitMQ is not done here: the relay
(relay_main.py) publishes what this service stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nameko.rpc import RpcProxy

from ksmart_applications import checks, commands
from ksmart_applications.command_types import (
    AssignFile,
    AttachDocument,
    CitizensConsent,
    EscalateFile,
    FileForCitizen,
    PaymentCallback,
    RequestContext,
    SubmitApplication,
    TakeAction,
)
from ksmart_applications.dependencies import (
    CertificateKeysProvider,
    EventStoreProvider,
    PaymentProviderProvider,
    ReferenceDataProvider,
)
from ksmart_applications.event_keys import EventKeys
from ksmart_applications.uploads import record_upload
from ksmart_common.actor_assertions import ActingAs
from ksmart_common.domain.file import Actor
from ksmart_common.domain.intake import Upload
from ksmart_common.envelope import file_stream_id, to_document, to_json
from ksmart_common.errors import (
    ActionNotAllowed,
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    Unauthenticated,
    VersionConflict,
)
from ksmart_common.identifiers import is_uuid
from ksmart_common.operations import Operations
from ksmart_common.rpc import call, rpc

MAX_PAGE = 1_000
# Refusals are answers to the caller, not faults of this service: nameko
# logs them as expected, not as errors with a traceback.
CALLER_ERRORS = (
    InvalidInput,
    NotFound,
    Forbidden,
    Unauthenticated,
    VersionConflict,
    ActionNotAllowed,
    IdempotencyKeyReused,
)


def actor_from(document: dict[str, Any]) -> Actor:
    return Actor(
        actor_id=str(document["actor_id"]),
        roles=tuple(document.get("roles", ())),
        local_body=document.get("local_body"),
        wards=tuple(document.get("wards") or ()),
    )


class ApplicationsService:
    name = "applications"

    # Health, readiness and metrics on the operations port; times every worker.
    ops = Operations()

    store = EventStoreProvider()
    reference = ReferenceDataProvider()
    payments = PaymentProviderProvider()
    certificate_keys = CertificateKeysProvider()
    catalogue = RpcProxy("catalogue")
    identity = RpcProxy("identity")

    def _latest_definition(self, code: str) -> dict:
        return self.reference.latest(
            code, lambda missing: call(self.catalogue.get_service, missing)
        )

    def _pinned_definition(self, content_hash: str) -> dict:
        return self.reference.pinned(
            content_hash, lambda missing: call(self.catalogue.get_definition, missing)
        )

    def _local_body(self, code: str) -> dict | None:
        """The identity service's directory entry (cached), or None."""

        def fetch(missing: str) -> dict | None:
            try:
                return call(self.identity.get_local_body, missing)
            except NotFound:
                return None

        return self.reference.local_body(code, fetch)

    @rpc(expected_exceptions=CALLER_ERRORS)
    def submit_application(
        self,
        service_code: str,
        local_body: str,
        form: dict,
        actor: dict,
        request: dict,
        documents: dict | None = None,
    ) -> dict:
        """documents: document code -> sha256 of the applicant's upload."""
        command = SubmitApplication(
            service_code=service_code,
            local_body=local_body,
            form=form,
            documents=documents or {},
            actor=actor_from(actor),
            request=RequestContext.from_rpc(request),
        )
        state, created = commands.submit(
            self.store,
            command,
            latest_definition=self._latest_definition,
            local_body_entry=self._local_body,
        )
        return {"file": state.view(), "created": created}

    @rpc(expected_exceptions=CALLER_ERRORS)
    def file_for_citizen(
        self,
        application: dict,
        consent: dict,
        actor: dict,
        request: dict,
    ) -> dict:
        """Counter staff file in a citizen's name with their consent.
        application: service_code, local_body, form, documents (document
        code -> sha256 of the filer's upload); consent: consent_id, code."""
        command = FileForCitizen(
            service_code=application["service_code"],
            local_body=application["local_body"],
            form=application["form"],
            documents=application.get("documents") or {},
            consent=CitizensConsent(consent_id=consent["consent_id"], code=consent["code"]),
            actor=actor_from(actor),
            request=RequestContext.from_rpc(request),
        )
        state, created = commands.file_for_citizen(
            self.store,
            command,
            latest_definition=self._latest_definition,
            local_body_entry=self._local_body,
            verify_consent=lambda consent_id, code, consume: call(
                self.identity.verify_consent, consent_id, code, ActingAs(actor), consume
            ),
        )
        return {"file": state.view(), "created": created}

    @rpc(expected_exceptions=CALLER_ERRORS)
    def check_application(self, application: dict, actor: dict, request: dict) -> list[dict]:
        """Every problem submit_application would name, without filing
        (checks.application_problems); no local_body: the office unchecked."""
        return checks.application_problems(
            self.store.engine,
            application,
            actor_from(actor),
            RequestContext.from_rpc(request).lang,
            latest_definition=self._latest_definition,
            local_body_entry=self._local_body,
        )

    @rpc(expected_exceptions=CALLER_ERRORS)
    def record_upload(
        self, sha256: str, media_type: str, size_bytes: int, filename: str | None, actor: dict
    ) -> dict:
        """The gateway stored a document's bytes; record whose it is."""
        upload = Upload(sha256, media_type, size_bytes, filename)
        return record_upload(self.store.engine, actor_from(actor).actor_id, upload).to_dict()

    @rpc(expected_exceptions=CALLER_ERRORS)
    def attach_document(
        self, file_id: str, code: str, sha256: str, actor: dict, request: dict
    ) -> dict:
        command = AttachDocument(
            file_id=file_id,
            code=code,
            sha256=sha256,
            actor=actor_from(actor),
            request=RequestContext.from_rpc(request),
        )
        return commands.attach_document(
            self.store, command, pinned_definition=self._pinned_definition
        ).view()

    @rpc(expected_exceptions=CALLER_ERRORS)
    def assign(self, file_id: str, official_id: str, actor: dict, request: dict) -> dict:
        """Hand a file to a named official (looked up in the identity service)."""
        # The caller's reach first: nobody learns who is an official through
        # a file they may not even read.
        commands.read_file(self.store, file_id, actor_from(actor))
        official = call(self.identity.get_official, official_id)
        command = AssignFile(
            file_id=file_id,
            assignee=actor_from(official),
            actor=actor_from(actor),
            request=RequestContext.from_rpc(request),
        )
        return commands.assign(self.store, command).view()

    @rpc(expected_exceptions=CALLER_ERRORS)
    def escalate(self, file_id: str, seen_version: int) -> dict:
        """For the workflow service's escalation timer."""
        command = EscalateFile(file_id=file_id, seen_version=seen_version, now=datetime.now(UTC))
        return commands.escalate(self.store, command).view()

    @rpc(expected_exceptions=CALLER_ERRORS)
    def document_for_reader(self, file_id: str, code: str, actor: dict) -> dict:
        """The upload behind a file's document, if the actor may read the file."""
        return commands.document_for_reader(self.store, file_id, code, actor_from(actor))

    @rpc(expected_exceptions=CALLER_ERRORS)
    def start_payment(self, file_id: str, actor: dict, return_url: str | None = None) -> dict:
        return commands.start_payment(
            self.store, self.payments, file_id, actor_from(actor), return_url
        )

    @rpc(expected_exceptions=CALLER_ERRORS)
    def payment_callback(self, body: str, signature: str | None, request: dict) -> dict:
        """A payment provider's callback, passed on by the gateway unread."""
        callback = PaymentCallback(
            body=body, signature=signature, request=RequestContext.from_rpc(request)
        )
        return commands.record_payment(self.store, self.payments, callback)

    @rpc(expected_exceptions=CALLER_ERRORS)
    def take_action(
        self,
        file_id: str,
        action: str,
        remarks: str | None,
        expected_version: int | None,
        actor: dict,
        request: dict,
        answers: dict | None = None,
    ) -> dict:
        """answers: corrected form answers, with a reply to a clarification."""
        command = TakeAction(
            file_id=file_id,
            action=action,
            remarks=remarks,
            expected_version=expected_version,
            answers=answers or {},
            actor=actor_from(actor),
            request=RequestContext.from_rpc(request),
        )
        state = commands.take_action(
            self.store,
            command,
            pinned_definition=self._pinned_definition,
            certificate_keys=self.certificate_keys,
        )
        return state.view()

    @rpc(expected_exceptions=CALLER_ERRORS)
    def certificate_for_reader(self, file_id: str, actor: dict) -> dict:
        """The file's signed certificate and the fields of its definition
        (for the PDF's labels), for those who may read the file."""
        state = commands.certified_file(self.store, file_id, actor_from(actor))
        return {
            "certificate": dict(state.certificate),
            "fields": self._pinned_definition(state.definition_hash)["fields"],
        }

    @rpc
    def check_certificate(self, number: str) -> dict:
        """Anyone's question: is there a genuine certificate with this
        number? The certificate as issued, and every problem with it."""
        found = commands.certificate_by_number(self.store, number)
        if found is None:
            return {"found": False, "valid": False, "problems": ["no certificate has this number"]}
        document = found["certificate"]
        problems = self.certificate_keys.problems(document, self.store.engine)
        # Numbers run in sequence, so anyone could walk through them: the
        # answer says whether such a certificate stands, never whose it is.
        # The holder's name and particulars are for whoever holds the
        # certificate (its QR code) or may read the file.
        payload = document["payload"]
        shown = ("certificate_number", "title", "local_body", "issued_at", "valid_until")
        return {
            "found": True,
            "valid": not problems,
            "problems": problems,
            "certificate": {key: payload.get(key) for key in shown},
            # Its issuing event, whose inclusion in the transparency log the
            # gateway proves (a hash and a position: nothing personal).
            "log_entry": found["log_entry"],
        }

    @rpc
    def certificate_log_entry(self, document: dict) -> dict | None:
        """The transparency-log entry of the event that issued this signed
        certificate (someone holds it: its QR code), if this very
        certificate was issued here; None otherwise."""
        number = str((document.get("payload") or {}).get("certificate_number", ""))
        found = commands.certificate_by_number(self.store, number)
        stored = {} if found is None else found["certificate"]
        if any(stored.get(key) != document.get(key) for key in ("payload", "signature")):
            return None
        return found["log_entry"]

    @rpc
    def certificate_problems(self, document: dict) -> list[str]:
        """Every problem of a signed certificate someone holds (from its QR
        code); [] when it is genuine and valid."""
        return self.certificate_keys.problems(document, self.store.engine)

    @rpc
    def certificate_keys_jwks(self) -> dict:
        """Every public key a genuine certificate may be signed with."""
        return self.certificate_keys.public_jwks(self.store.engine)

    @rpc
    def event_keys_jwks(self) -> dict:
        """Every endorsed key an event may be signed with (an auditor's check)."""
        return EventKeys(self.store.engine).public_jwks()

    @rpc(expected_exceptions=CALLER_ERRORS)
    def get_file(self, file_id: str, actor: dict) -> dict:
        return commands.file_view(self.store, file_id, actor_from(actor))

    @rpc
    def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[dict]:
        """For other services (gap filling); the gateway never exposes it raw."""
        return [
            to_json(envelope)
            for envelope in self.store.read_stream(stream_id, from_version, to_version)
        ]

    @rpc
    def audit_file_events(self, file_id: str, actor: dict) -> list[dict]:
        commands.require_auditor(actor_from(actor))
        # Served as stored, without replaying: an auditor must see a stream
        # even when it no longer replays (an event altered or removed).
        if not is_uuid(file_id):
            raise NotFound(f"no file {file_id}")
        # Each with its stored text (`canonical`), carried verbatim so the
        # auditor hashes the very bytes the store holds.
        events = self.store.read_stream(file_stream_id(file_id), stored=True)
        if not events:
            raise NotFound(f"no file {file_id}")
        return [to_document(event) for event in events]

    @rpc
    def audit_read_all(self, after_position: int, limit: int, actor: dict) -> dict:
        commands.require_auditor(actor_from(actor))
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(
                "limit out of range", [{"field": "limit", "message": f"1 to {MAX_PAGE}"}]
            )
        events = self.store.read_all(after_position, limit, stored=True)
        return {
            "events": [to_document(event) for event in events],
            "next_position": events[-1].envelope.global_position if events else after_position,
        }

    @rpc
    def health(self) -> dict:
        return {"status": "ok", "last_position": self.store.last_position()}
