"""The gateway: the platform's only public entry, JSON under /api/v1.

Each endpoint states who may call it (`allowed_roles`), validates its input
with the schemas in schemas.py and makes RPC calls with a deadline. The
OpenAPI document at /api/v1/openapi.json is generated from these same
declarations (openapi.py).
"""

from __future__ import annotations

from typing import Any

from nameko.rpc import RpcProxy
from werkzeug.wrappers import Request

from ksmart_common.envelope import from_json, verify_chain
from ksmart_common.errors import InvalidInput
from ksmart_common.roles import AUDITOR, CITIZEN, OFFICIAL_ROLES
from ksmart_common.rpc import call
from ksmart_gateway import schemas
from ksmart_gateway.api import (
    PUBLIC,
    ApiResult,
    api,
    instance,
    read_json,
    read_query,
    request_id,
)
from ksmart_gateway.auth import Principal
from ksmart_gateway.openapi import openapi_document

PREFIX = "/api/v1"
ANYONE_SIGNED_IN = (CITIZEN, *OFFICIAL_ROLES, AUDITOR)


def actor(principal: Principal) -> dict[str, Any]:
    return {
        "actor_id": principal.user_id,
        "roles": list(principal.roles),
        "local_body": principal.local_body,
    }


def request_meta(request: Request, **extra: Any) -> dict[str, Any]:
    return {"request_id": request_id(request), "correlation_id": request_id(request), **extra}


def file_body(view: dict[str, Any]) -> dict[str, Any]:
    """A file as the applications service shows it (FileState.view)."""
    return instance(schemas.FileResponse).dump(view)


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise InvalidInput(
            "If-Match must be the ETag of the file (its version)",
            [{"field": "If-Match", "message": 'expected a quoted version, as "3"'}],
        )
    return int(tag)


class GatewayService:
    name = "gateway"

    identity = RpcProxy("identity")
    catalogue = RpcProxy("catalogue")
    applications = RpcProxy("applications")
    workflow = RpcProxy("workflow")

    # -- platform ------------------------------------------------------------

    @api("GET", "/health", summary="Liveness of the gateway", allowed_roles=PUBLIC, tag="platform")
    def health(self, request, principal):
        return ApiResult({"status": "ok"})

    @api(
        "GET",
        f"{PREFIX}/openapi.json",
        summary="This API's OpenAPI document",
        allowed_roles=PUBLIC,
        tag="platform",
    )
    def openapi(self, request, principal):
        return ApiResult(openapi_document(type(self)))

    @api(
        "POST",
        f"{PREFIX}/auth/token",
        summary="Sign in with a username and password",
        allowed_roles=PUBLIC,
        body=schemas.TokenRequest,
        response=schemas.TokenResponse,
        tag="auth",
    )
    def token(self, request, principal):
        credentials = read_json(request, schemas.TokenRequest)
        return ApiResult(
            call(self.identity.login, credentials["username"], credentials["password"])
        )

    # -- catalogue -----------------------------------------------------------

    @api(
        "GET",
        f"{PREFIX}/services",
        summary="Every service a citizen can apply for",
        allowed_roles=PUBLIC,
        response=schemas.ServiceList,
        tag="catalogue",
    )
    def list_services(self, request, principal):
        return ApiResult({"services": call(self.catalogue.list_services)})

    @api(
        "GET",
        f"{PREFIX}/services/<string:code>",
        summary="One service's complete definition: fields, documents, fees, workflow",
        allowed_roles=PUBLIC,
        tag="catalogue",
    )
    def get_service(self, request, principal, code):
        return ApiResult(call(self.catalogue.get_service, code))

    # -- files -----------------------------------------------------------------

    @api(
        "POST",
        f"{PREFIX}/files",
        summary="Submit an application; it becomes a file",
        allowed_roles=(CITIZEN,),
        body=schemas.SubmitApplicationRequest,
        response=schemas.FileResponse,
        status=201,
        headers=("Idempotency-Key",),
    )
    def submit(self, request, principal):
        application = read_json(request, schemas.SubmitApplicationRequest)
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 1 <= len(key) <= 200:
            raise InvalidInput(
                "bad Idempotency-Key",
                [{"field": "Idempotency-Key", "message": "1 to 200 characters"}],
            )
        outcome = call(
            self.applications.submit_application,
            application["service_code"],
            application["local_body"],
            application["form"],
            actor(principal),
            request_meta(request, idempotency_key=key),
        )
        document = outcome["file"]
        return ApiResult(
            file_body(document),
            status=201 if outcome["created"] else 200,
            headers={
                "Location": f"{PREFIX}/files/{document['file_id']}",
                "ETag": etag(document["version"]),
            },
        )

    @api(
        "GET",
        f"{PREFIX}/files/<uuid:file_id>",
        summary="A file: its state and the timeline of decisions",
        allowed_roles=ANYONE_SIGNED_IN,
        response=schemas.FileResponse,
    )
    def get_file(self, request, principal, file_id):
        document = call(self.applications.get_file, str(file_id), actor(principal))
        return ApiResult(file_body(document), headers={"ETag": etag(document["version"])})

    @api(
        "POST",
        f"{PREFIX}/files/<uuid:file_id>/actions",
        summary="Take an action on a file (verify, approve, reject, return, resubmit)",
        allowed_roles=(CITIZEN, *OFFICIAL_ROLES),
        body=schemas.ActionRequest,
        response=schemas.FileResponse,
        headers=("If-Match",),
    )
    def take_action(self, request, principal, file_id):
        decision = read_json(request, schemas.ActionRequest)
        header_version = parse_if_match(request.headers.get("If-Match"))
        expected = decision["expected_version"]
        if header_version is not None and expected is not None and header_version != expected:
            raise InvalidInput(
                "If-Match and expected_version disagree",
                [{"field": "If-Match", "message": "send one, or the same version"}],
            )
        document = call(
            self.applications.take_action,
            str(file_id),
            decision["action"],
            decision["remarks"],
            header_version if header_version is not None else expected,
            actor(principal),
            request_meta(request),
        )
        return ApiResult(file_body(document), headers={"ETag": etag(document["version"])})

    @api(
        "GET",
        f"{PREFIX}/inbox",
        summary="Files waiting on the caller: an official's role in their local body, "
        "or a citizen's own files returned to them",
        allowed_roles=(CITIZEN, *OFFICIAL_ROLES),
        query=schemas.InboxQuery,
        response=schemas.InboxResponse,
        tag="inbox",
    )
    def inbox(self, request, principal):
        query = read_query(request, schemas.InboxQuery)
        return ApiResult(
            call(self.workflow.inbox, actor(principal), query["limit"], query["cursor"])
        )

    # -- audit -----------------------------------------------------------------

    @api(
        "GET",
        f"{PREFIX}/audit/files/<uuid:file_id>/events",
        summary="A file's events, with the verification of its hash chain",
        allowed_roles=(AUDITOR,),
        response=schemas.AuditFileResponse,
        tag="audit",
    )
    def audit_file(self, request, principal, file_id):
        documents = call(self.applications.audit_file_events, str(file_id), actor(principal))
        chain_problems = verify_chain([from_json(document) for document in documents])
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
    def audit_events(self, request, principal):
        query = read_query(request, schemas.AuditEventsQuery)
        return ApiResult(
            call(self.applications.audit_read_all, query["after"], query["limit"], actor(principal))
        )
