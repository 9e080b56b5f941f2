"""The gateway: the platform's only public entry, JSON under /api/v1.

Each endpoint states who may call it (`allowed_roles`), validates its input
with the schemas in schemas.py and makes RPC calls with a deadline. The
OpenAPI document at /api/v1/openapi.json is generated from these same
declarations (openapi.py).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from eventlet import tpool
from nameko.rpc import RpcProxy
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from ksmart_common import config, signatures
from ksmart_common.domain import certificate
from ksmart_common.domain.documents import check_sha256
from ksmart_common.domain.intake import language
from ksmart_common.domain.roles import ADMINISTRATOR, AUDITOR, CITIZEN, OFFICIAL_ROLES
from ksmart_common.domain.vocabulary import LOCAL_BODY_CODE
from ksmart_common.envelope import from_json, verify_chain
from ksmart_common.errors import InvalidInput, NotFound, PayloadTooLarge
from ksmart_common.operations import Operations
from ksmart_common.rpc import call
from ksmart_gateway import certificate_pdf, schemas
from ksmart_gateway.api import (
    PUBLIC,
    ApiResult,
    api,
    instance,
    read_callback,
    read_json,
    read_query,
    request_id,
)
from ksmart_gateway.auth import Principal
from ksmart_gateway.client_address import client_address as caller_address
from ksmart_gateway.client_address import trusted_proxies
from ksmart_gateway.documents import (
    DOCUMENT_FORMATS,
    MAX_DOCUMENT_BYTES,
    DocumentStorageProvider,
    download_name,
    safe_filename,
)
from ksmart_gateway.notifications import NotificationEndpoints
from ksmart_gateway.openapi import openapi_document

PREFIX = "/api/v1"
# Who may read files (each service then decides which files): citizens,
# officials and auditors; administrators manage people, not files.
FILE_READERS = (CITIZEN, *OFFICIAL_ROLES, AUDITOR)
ANY_USER = (*FILE_READERS, ADMINISTRATOR)


def actor(principal: Principal) -> dict[str, Any]:
    return principal.as_actor()


def request_meta(request: Request, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": request_id(request),
        "correlation_id": request_id(request),
        # The language problems are written in: Accept-Language, English by default.
        "lang": language(request.headers.get("Accept-Language")),
        **extra,
    }


# Read at start, so a setting that is not understood stops the gateway.
TRUSTED_PROXIES = trusted_proxies(config.env("KSMART_TRUSTED_PROXY", ""))


def client_address(request: Request) -> str:
    """The caller's rate-limit key (ksmart_gateway.client_address)."""
    return caller_address(
        request.remote_addr, request.headers.get("X-Forwarded-For"), TRUSTED_PROXIES
    )


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


# The catalogue changes only when a new version ships: answers may be cached
# for a while, and one pinned to a version (or hash) for ever.
CATALOGUE_MAX_AGE = 300
DOWNLOAD_CHUNK_BYTES = 64 * 1024
IMMUTABLE = "public, max-age=31536000, immutable"


def cacheable(request: Request, body: Any, tag: str, cache_control: str) -> Response | ApiResult:
    """The answer with its ETag, or 304 Not Modified if the caller has it."""
    headers = {"ETag": f'"{tag}"', "Cache-Control": cache_control}
    # Weak comparison, as If-None-Match asks: a cache may hand back W/"...".
    if request.if_none_match.contains_weak(tag):
        return Response(status=304, headers=headers)
    return ApiResult(body, headers=headers)


def body_tag(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class GatewayService(NotificationEndpoints):
    name = "gateway"

    # Health, readiness and metrics on the operations port; times every worker.
    ops = Operations()

    documents = DocumentStorageProvider()

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
        checks_credentials=True,
    )
    def token(self, request, principal):
        credentials = read_json(request, schemas.TokenRequest)
        return ApiResult(
            call(self.identity.login, credentials["username"], credentials["password"])
        )

    @api(
        "POST",
        f"{PREFIX}/auth/otp",
        summary="A citizen asks for a one-time sign-in code, sent by SMS to a phone number "
        "of any country (E.164) or by email; the first sign-in registers them",
        allowed_roles=PUBLIC,
        body=schemas.CodeRequest,
        response=schemas.CodeResponse,
        status=202,
        tag="auth",
    )
    def request_code(self, request, principal):
        asked = read_json(request, schemas.CodeRequest)
        challenge = call(
            self.identity.request_code,
            asked["phone"],
            asked["email"],
            client_address(request),
            asked["language"],
        )
        return ApiResult(challenge, status=202)

    @api(
        "POST",
        f"{PREFIX}/auth/otp/verify",
        summary="Sign in with the one-time code: single use, 15 minutes, 5 tries",
        allowed_roles=PUBLIC,
        body=schemas.CodeSignInRequest,
        response=schemas.TokenResponse,
        tag="auth",
        checks_credentials=True,
    )
    def sign_in_with_code(self, request, principal):
        answer = read_json(request, schemas.CodeSignInRequest)
        return ApiResult(
            call(self.identity.sign_in_with_code, answer["challenge_id"], answer["code"])
        )

    @api(
        "POST",
        f"{PREFIX}/auth/refresh",
        summary="New tokens for a session; the refresh token is replaced, and an old one "
        "used again ends the session",
        allowed_roles=PUBLIC,
        body=schemas.RefreshRequest,
        response=schemas.TokenResponse,
        tag="auth",
        checks_credentials=True,
    )
    def refresh(self, request, principal):
        body = read_json(request, schemas.RefreshRequest)
        return ApiResult(call(self.identity.refresh, body["refresh_token"]))

    @api(
        "POST",
        f"{PREFIX}/auth/logout",
        summary="End the caller's session: its access and refresh tokens stop working",
        allowed_roles=ANY_USER,
        response=schemas.LogoutResponse,
        tag="auth",
    )
    def logout(self, request, principal):
        if principal.session_id is None:
            return ApiResult({"ended": False})
        return ApiResult(call(self.identity.logout, principal.session_id))

    # -- administration --------------------------------------------------------

    @api(
        "GET",
        f"{PREFIX}/admin/staff",
        summary="Officials, auditors and administrators, by local body or kind",
        allowed_roles=(ADMINISTRATOR,),
        query=schemas.StaffQuery,
        response=schemas.StaffList,
        tag="administration",
    )
    def list_staff(self, request, principal):
        query = read_query(request, schemas.StaffQuery)
        return ApiResult(
            {
                "staff": call(
                    self.identity.list_staff, query["local_body"], query["kind"], actor(principal)
                )
            }
        )

    @api(
        "POST",
        f"{PREFIX}/admin/staff",
        summary="Create an official (roles in a local body, optionally some wards), an "
        "auditor or an administrator",
        allowed_roles=(ADMINISTRATOR,),
        body=schemas.StaffCreateRequest,
        response=schemas.StaffMember,
        status=201,
        tag="administration",
    )
    def create_staff(self, request, principal):
        member = read_json(request, schemas.StaffCreateRequest)
        created = call(self.identity.create_staff, member, actor(principal))
        return ApiResult(instance(schemas.StaffMember).dump(created), status=201)

    @api(
        "PATCH",
        f"{PREFIX}/admin/staff/<uuid:user_id>",
        summary="Change roles, jurisdiction or standing (disabled); the person's sessions end",
        allowed_roles=(ADMINISTRATOR,),
        body=schemas.StaffUpdateRequest,
        tag="administration",
    )
    def update_staff(self, request, principal, user_id):
        changes = read_json(request, schemas.StaffUpdateRequest)
        updated = call(self.identity.update_staff, str(user_id), changes, actor(principal))
        return ApiResult({"user": updated})

    # -- the local-body directory ------------------------------------------------

    @api(
        "GET",
        f"{PREFIX}/districts",
        summary="Kerala's districts",
        allowed_roles=PUBLIC,
        response=schemas.DistrictList,
        tag="directory",
    )
    def districts(self, request, principal):
        body = {"districts": call(self.identity.list_districts)}
        return cacheable(request, body, body_tag(body), f"public, max-age={CATALOGUE_MAX_AGE}")

    @api(
        "GET",
        f"{PREFIX}/local-bodies",
        summary="Local bodies (grama, block and district panchayats, municipalities, "
        "corporations), by district and type",
        allowed_roles=PUBLIC,
        query=schemas.LocalBodyQuery,
        response=schemas.LocalBodyList,
        tag="directory",
    )
    def local_bodies(self, request, principal):
        query = read_query(request, schemas.LocalBodyQuery)
        body = {
            "local_bodies": call(self.identity.list_local_bodies, query["district"], query["type"])
        }
        return cacheable(request, body, body_tag(body), f"public, max-age={CATALOGUE_MAX_AGE}")

    @api(
        "GET",
        f"{PREFIX}/local-bodies/<string:code>",
        summary="One local body: its district, type, names and number of wards",
        allowed_roles=PUBLIC,
        response=schemas.LocalBody,
        tag="directory",
    )
    def local_body(self, request, principal, code):
        if not LOCAL_BODY_CODE.match(code):
            raise NotFound(f"no local body {code!r}")
        body = call(self.identity.get_local_body, code)
        return cacheable(request, body, body_tag(body), f"public, max-age={CATALOGUE_MAX_AGE}")

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
        query = read_query(request, schemas.ServiceQuery)
        services = call(
            self.catalogue.list_services, query["q"], query["category"], query["local_body_type"]
        )
        body = {"services": services}
        return cacheable(request, body, body_tag(body), f"public, max-age={CATALOGUE_MAX_AGE}")

    @api(
        "GET",
        f"{PREFIX}/categories",
        summary="The categories services are listed under, with their names",
        allowed_roles=PUBLIC,
        response=schemas.CategoryList,
        tag="catalogue",
    )
    def categories(self, request, principal):
        body = {"categories": call(self.catalogue.categories)}
        return cacheable(request, body, body_tag(body), f"public, max-age={CATALOGUE_MAX_AGE}")

    @api(
        "GET",
        f"{PREFIX}/services/<string:code>",
        summary="One service's complete checklist in one answer: who may apply, every "
        "field, every document (formats, size limits, when needed), fees, time limit, "
        "offices and workflow; the latest version, or ?version=N",
        allowed_roles=PUBLIC,
        query=schemas.ServiceVersionQuery,
        tag="catalogue",
    )
    def get_service(self, request, principal, code):
        version = read_query(request, schemas.ServiceVersionQuery)["version"]
        definition = call(self.catalogue.get_service, code, version)
        # Its content hash names this exact definition: the perfect ETag.
        cache_control = IMMUTABLE if version else f"public, max-age={CATALOGUE_MAX_AGE}"
        return cacheable(request, definition, definition["content_hash"], cache_control)

    @api(
        "GET",
        f"{PREFIX}/definitions/<string:content_hash>",
        summary="The definition with this content hash, however old: what a file was "
        "filed under (its definition_hash)",
        allowed_roles=PUBLIC,
        tag="catalogue",
    )
    def get_definition(self, request, principal, content_hash):
        definition = call(self.catalogue.get_definition, check_sha256(content_hash))
        return cacheable(request, definition, definition["content_hash"], IMMUTABLE)

    # -- documents ---------------------------------------------------------------

    @api(
        "POST",
        f"{PREFIX}/documents",
        summary="Upload a document (the raw bytes as the body: PDF, JPEG or PNG, judged by "
        "content, at most 25 MiB); attach it by its sha256 when applying",
        allowed_roles=(CITIZEN,),
        query=schemas.UploadQuery,
        response=schemas.UploadResponse,
        status=201,
        tag="documents",
        raw_body=True,
    )
    def upload_document(self, request, principal):
        filename = safe_filename(read_query(request, schemas.UploadQuery)["filename"])
        if (request.content_length or 0) > MAX_DOCUMENT_BYTES:
            raise PayloadTooLarge(
                "the document is too large",
                [{"field": "body", "message": f"at most {MAX_DOCUMENT_BYTES} bytes"}],
            )
        # Hashing and fsync are blocking work: a real thread, so the gateway's
        # other requests (green threads) are not held up meanwhile.
        stored = tpool.execute(
            self.documents.put, request.stream, MAX_DOCUMENT_BYTES, DOCUMENT_FORMATS
        )
        upload = call(
            self.applications.record_upload,
            stored.sha256,
            stored.media_type,
            stored.size_bytes,
            filename,
            actor(principal),
        )
        return ApiResult(instance(schemas.UploadResponse).dump(upload), status=201)

    @api(
        "POST",
        f"{PREFIX}/files/<uuid:file_id>/documents",
        summary="Attach one of your uploads to your open file (as a clarification asks)",
        allowed_roles=(CITIZEN,),
        body=schemas.AttachDocumentRequest,
        response=schemas.FileResponse,
        tag="documents",
    )
    def attach_document(self, request, principal, file_id):
        attachment = read_json(request, schemas.AttachDocumentRequest)
        document = call(
            self.applications.attach_document,
            str(file_id),
            attachment["code"],
            attachment["sha256"],
            actor(principal),
            request_meta(request),
        )
        return ApiResult(file_body(document), headers={"ETag": etag(document["version"])})

    @api(
        "GET",
        f"{PREFIX}/files/<uuid:file_id>/documents/<string:code>",
        summary="Download a document of a file: for those who may read the file",
        allowed_roles=FILE_READERS,
        tag="documents",
        binary_response=True,
    )
    def download_document(self, request, principal, file_id, code):
        upload = call(self.applications.document_for_reader, str(file_id), code, actor(principal))
        sha256 = check_sha256(upload["sha256"])
        return Response(
            wrap_file(request.environ, self.documents.open(sha256), DOWNLOAD_CHUNK_BYTES),
            direct_passthrough=True,
            content_type=upload["media_type"],
            headers={
                "Content-Length": str(upload["size_bytes"]),
                "Content-Disposition": f'attachment; filename="{download_name(code, upload)}"',
                "ETag": f'"{sha256}"',
                "Cache-Control": "private, max-age=3600",
                # Served as the type it was judged to be, never re-guessed.
                "X-Content-Type-Options": "nosniff",
            },
        )

    # -- certificates ------------------------------------------------------------

    @api(
        "GET",
        f"{PREFIX}/files/<uuid:file_id>/certificate",
        summary="The certificate a granted file yields, as PDF (with a QR code that "
        "verifies it offline): for those who may read the file",
        allowed_roles=FILE_READERS,
        tag="certificates",
        binary_response=True,
    )
    def certificate_pdf(self, request, principal, file_id):
        issued = call(self.applications.certificate_for_reader, str(file_id), actor(principal))
        pdf = tpool.execute(
            certificate_pdf.render_pdf,
            issued["certificate"],
            language(request.headers.get("Accept-Language")),
            fields=issued["fields"],
            # Printed on the certificate: the platform's public address, never
            # whatever Host header this request came with.
            base_url=config.env("KSMART_PUBLIC_URL", ""),
        )
        number = issued["certificate"]["payload"]["certificate_number"].replace("/", "-")
        return Response(
            pdf,
            content_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="certificate-{number}.pdf"',
                "Cache-Control": "private, max-age=3600",
            },
        )

    @api(
        "GET",
        f"{PREFIX}/certificates/<path:number>",
        summary="Anyone checks a certificate by its number: the certificate as issued, "
        "and whether it is genuine and valid",
        allowed_roles=PUBLIC,
        response=schemas.CertificateVerdict,
        tag="certificates",
    )
    def check_certificate(self, request, principal, number):
        if len(number) > 100:
            raise NotFound("no certificate has this number")
        return ApiResult(call(self.applications.check_certificate, number))

    @api(
        "POST",
        f"{PREFIX}/certificates/verify",
        summary="Anyone checks the text of a certificate's QR code against the published keys",
        allowed_roles=PUBLIC,
        body=schemas.CertificateCheck,
        response=schemas.CertificateVerdict,
        tag="certificates",
    )
    def verify_certificate_qr(self, request, principal):
        text = read_json(request, schemas.CertificateCheck)["qr_text"]
        try:
            document = certificate.parse_qr_text(text)
        except ValueError as error:
            return ApiResult({"found": False, "valid": False, "problems": [f"malformed: {error}"]})
        problems = call(self.applications.certificate_problems, document)
        # The caller holds the QR code, so they hold its contents already.
        return ApiResult(
            {
                "found": True,
                "valid": not problems,
                "problems": problems,
                "certificate": document["payload"],
            }
        )

    @api(
        "GET",
        f"{PREFIX}/certificate-keys",
        summary="Every public key a genuine certificate may be signed with (JWKS), to "
        "verify certificates offline",
        allowed_roles=PUBLIC,
        tag="certificates",
    )
    def certificate_keys(self, request, principal):
        body = call(self.applications.certificate_keys_jwks)
        return ApiResult(body, headers={"Cache-Control": "public, max-age=3600"})

    # -- fees ----------------------------------------------------------------------

    @api(
        "POST",
        f"{PREFIX}/files/<uuid:file_id>/payments",
        summary="Start paying the fee due on your file; the provider confirms by callback",
        allowed_roles=(CITIZEN,),
        response=schemas.PaymentResponse,
        status=201,
        tag="fees",
    )
    def start_payment(self, request, principal, file_id):
        payment = call(self.applications.start_payment, str(file_id), actor(principal))
        return ApiResult(payment, status=201)

    @api(
        "POST",
        f"{PREFIX}/payments/callback",
        summary="The payment provider's callback: the body is signed by the provider "
        f"({signatures.PAYMENT_SIGNATURE_HEADER}), and nothing else is trusted",
        allowed_roles=PUBLIC,
        response=schemas.PaymentCallbackResponse,
        tag="fees",
        headers=(signatures.PAYMENT_SIGNATURE_HEADER,),
        checks_credentials=True,
    )
    def payment_callback(self, request, principal):
        body = read_callback(request)
        outcome = call(
            self.applications.payment_callback,
            body,
            request.headers.get(signatures.PAYMENT_SIGNATURE_HEADER),
            request_meta(request),
        )
        return ApiResult(outcome)

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
            # One id per request, so a redelivery of this call makes no second file.
            request_meta(request, idempotency_key=key, command_id=str(uuid.uuid4())),
            application["documents"],
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
        allowed_roles=FILE_READERS,
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
            # One id per request, so a redelivery of this call decides nothing twice.
            request_meta(request, command_id=str(uuid.uuid4())),
            decision["answers"],
        )
        return ApiResult(file_body(document), headers={"ETag": etag(document["version"])})

    @api(
        "GET",
        f"{PREFIX}/inbox",
        summary="Files waiting on the caller: an official's role in their local body, "
        "or a citizen's own files returned to them; soonest due first, filterable by "
        "service, state, overdue and assignment",
        allowed_roles=(CITIZEN, *OFFICIAL_ROLES),
        query=schemas.InboxQuery,
        response=schemas.InboxResponse,
        tag="inbox",
    )
    def inbox(self, request, principal):
        query = read_query(request, schemas.InboxQuery)
        filters = {
            "service_code": query["service"],
            "state": query["state"],
            "overdue": query["overdue"],
            "assigned": query["assigned"],
        }
        return ApiResult(
            call(self.workflow.inbox, actor(principal), query["limit"], query["cursor"], filters)
        )

    @api(
        "GET",
        f"{PREFIX}/statistics",
        summary="For the public and managers: files received, decided, pending and overdue, "
        "and the median days to a decision, per local body and service",
        allowed_roles=PUBLIC,
        query=schemas.StatisticsQuery,
        response=schemas.Statistics,
        tag="statistics",
    )
    def statistics(self, request, principal):
        query = read_query(request, schemas.StatisticsQuery)
        body = call(self.workflow.statistics, query["local_body"], query["service"])
        return ApiResult(body, headers={"Cache-Control": "public, max-age=60"})

    @api(
        "GET",
        f"{PREFIX}/inbox/counts",
        summary="For the caller's local body: files waiting on each role, overdue, unassigned",
        allowed_roles=OFFICIAL_ROLES,
        response=schemas.OfficeCounts,
        tag="inbox",
    )
    def office_counts(self, request, principal):
        return ApiResult(call(self.workflow.office_counts, actor(principal)))

    @api(
        "POST",
        f"{PREFIX}/files/<uuid:file_id>/assignment",
        summary="Hand a file to a named official of its body who holds the role it waits on "
        "(section officers and the secretary; an official may take a file himself)",
        allowed_roles=OFFICIAL_ROLES,
        body=schemas.AssignRequest,
        response=schemas.FileResponse,
        tag="inbox",
    )
    def assign(self, request, principal, file_id):
        body = read_json(request, schemas.AssignRequest)
        document = call(
            self.applications.assign,
            str(file_id),
            str(body["official_id"]),
            actor(principal),
            request_meta(request),
        )
        return ApiResult(file_body(document), headers={"ETag": etag(document["version"])})

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
