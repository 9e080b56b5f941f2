"""The gateway's audit endpoints: an auditor finds a file by its number,
reads a file's events, with its hash chain verified here, or every event
after a position, to verify and replay offline; and anyone reads the keys
that sign events (ksmart_common.event_signatures), to check them offline. A mixin of GatewayService
(service.py), which holds the applications proxy they call (the
applications service keeps the events); the number is looked up in the
workflow service's projection, through the proxy InboxEndpoints declares."""

from __future__ import annotations

from ksmart_common.domain.roles import AUDITOR
from ksmart_common.domain.vocabulary import is_file_number
from ksmart_common.envelope import read_document, verify_chain
from ksmart_common.errors import NotFound
from ksmart_common.rpc import call
from ksmart_gateway import schemas
from ksmart_gateway.api import PREFIX, PUBLIC, ApiResult, api
from ksmart_gateway.caching import public


class AuditEndpoints:
    @api(
        "GET",
        f"{PREFIX}/audit/files",
        summary="The file with this number: its id, to read its events by",
        allowed_roles=(AUDITOR,),
        query=schemas.AuditFileQuery,
        response=schemas.AuditFileFound,
        tag="audit",
    )
    def audit_find_file(self, request, principal, query):
        if not is_file_number(query["number"]):
            # No file has a number of another shape: answered without a call.
            raise NotFound("no file has this number")
        return ApiResult(call(self.workflow.file_by_number, query["number"]))

    @api(
        "GET",
        f"{PREFIX}/audit/files/<uuid:file_id>/events",
        summary="A file's events, with the verification of its hash chain",
        allowed_roles=(AUDITOR,),
        response=schemas.AuditFileResponse,
        tag="audit",
    )
    def audit_file(self, request, principal, file_id):
        documents = call(self.applications.audit_file_events, str(file_id), principal.as_actor())
        # Verified from each event's stored text, as the auditor's tool does.
        chain_problems = verify_chain([read_document(document)[0] for document in documents])
        return ApiResult(
            {
                "file_id": str(file_id),
                "verified": not chain_problems,
                "problems": chain_problems,
                "events": documents,
            }
        )

    @api(
        "GET",
        f"{PREFIX}/audit/events",
        summary="Every event after a global position, in pages",
        allowed_roles=(AUDITOR,),
        query=schemas.AuditEventsQuery,
        response=schemas.AuditEventsResponse,
        tag="audit",
    )
    def audit_events(self, request, principal, query):
        return ApiResult(
            call(
                self.applications.audit_read_all,
                query["after"],
                query["limit"],
                principal.as_actor(),
            )
        )

    @api(
        "GET",
        f"{PREFIX}/event-keys",
        summary="Every public key a genuine event may be signed with (JWKS), each with the "
        "deployment key root's endorsement, to check events' signatures offline",
        allowed_roles=PUBLIC,
        tag="audit",
    )
    def event_keys(self, request, principal):
        body = call(self.applications.event_keys_jwks)
        # Short: a newly endorsed key must reach auditors soon after it signs.
        return ApiResult(body, headers={"Cache-Control": public(300)})
