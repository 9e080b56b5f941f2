"""The gateway: the platform's only public entry, JSON under /api/v1.

Each endpoint states who may call it (`allowed_roles`) and the schemas of
its query and body (api.py), and makes RPC calls with a deadline. The
OpenAPI document at /api/v1/openapi.json is generated from these same
declarations (openapi.py).

The endpoints live by area, each area a mixin in a module of its own; this
class composes them and holds what more than one area calls.
"""

from __future__ import annotations

from nameko.rpc import RpcProxy

from ksmart_common.operations import Operations
from ksmart_gateway.api import PREFIX, PUBLIC, ApiResult, api
from ksmart_gateway.audit import AuditEndpoints
from ksmart_gateway.catalogue import CatalogueEndpoints
from ksmart_gateway.certificates import CertificateEndpoints
from ksmart_gateway.counter import CounterEndpoints
from ksmart_gateway.directory import DirectoryEndpoints
from ksmart_gateway.documents import DocumentEndpoints
from ksmart_gateway.fees import FeeEndpoints
from ksmart_gateway.files import FileEndpoints
from ksmart_gateway.inbox import InboxEndpoints
from ksmart_gateway.notifications import NotificationEndpoints
from ksmart_gateway.openapi import openapi_document
from ksmart_gateway.sessions import SessionEndpoints
from ksmart_gateway.staff import StaffEndpoints
from ksmart_gateway.transparency import TransparencyEndpoints
from ksmart_gateway.validation import ApplicationCheckEndpoints


class GatewayService(
    SessionEndpoints,
    StaffEndpoints,
    DirectoryEndpoints,
    CatalogueEndpoints,
    DocumentEndpoints,
    CertificateEndpoints,
    FeeEndpoints,
    FileEndpoints,
    ApplicationCheckEndpoints,
    CounterEndpoints,
    InboxEndpoints,
    AuditEndpoints,
    NotificationEndpoints,
    TransparencyEndpoints,
):
    name = "gateway"

    # Health, readiness and metrics on the operations port; times every worker.
    ops = Operations()

    # Called by several areas: identity by sessions, staff, the directory and the counter;
    # applications by files, the counter, documents, certificates, fees and audit;
    # the checkpointer by the log, files and certificates (their proofs: log_standing).
    identity = RpcProxy("identity")
    applications = RpcProxy("applications")
    checkpointer = RpcProxy("checkpointer")

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
