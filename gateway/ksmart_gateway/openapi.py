"""The OpenAPI document, generated from the endpoints' own declarations and
the marshmallow schemas that validate requests: one source, no drift."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from ksmart_common.domain.documents import DOCUMENT_FORMATS
from ksmart_gateway import schemas
from ksmart_gateway.api import ApiEndpoint

PATH_PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")
PROBLEM = {"application/problem+json": {"schema": "Problem"}}
BINARY = {"type": "string", "format": "binary"}
ERROR_RESPONSES = {
    "400": "The body is not JSON",
    "401": "No valid bearer token",
    "403": "The caller's role or jurisdiction does not allow this",
    "404": "Not found, or not the caller's to see",
    "409": "The file changed since it was read, or the action does not fit its state",
    "413": "The body or document is too large",
    "415": "The body is not application/json",
    "422": "The request has problems: every one is listed",
    "429": "Too many requests: retry after the Retry-After seconds",
    "503": "A service is unavailable; retry after the Retry-After seconds",
}


def endpoints(service_class: type) -> list[tuple[str, ApiEndpoint]]:
    found = []
    for name in dir(service_class):
        for entrypoint in getattr(getattr(service_class, name), "nameko_entrypoints", ()):
            if isinstance(entrypoint, ApiEndpoint):
                found.append((name, entrypoint))
    return sorted(found, key=lambda item: (item[1].url, item[1].method))


def _operation(name: str, endpoint: ApiEndpoint) -> dict[str, Any]:
    who = "anyone" if endpoint.is_public else ", ".join(endpoint.allowed_roles)
    operation: dict[str, Any] = {
        "operationId": name,
        "summary": endpoint.summary,
        "description": f"Who may call: {who}.",
        "tags": [endpoint.tag],
        "x-allowed-roles": list(endpoint.allowed_roles),
        "parameters": [],
        "responses": {},
    }
    if not endpoint.is_public:
        operation["security"] = [{"bearer": []}]
    for converter, parameter in PATH_PARAMETER.findall(endpoint.url):
        schema = {"type": "string", "format": "uuid"} if converter == "uuid" else {"type": "string"}
        operation["parameters"].append(
            {"in": "path", "name": parameter, "required": True, "schema": schema}
        )
    if endpoint.query_schema is not None:
        operation["parameters"].append({"in": "query", "schema": endpoint.query_schema})
    for header in endpoint.request_headers:
        operation["parameters"].append(
            {"in": "header", "name": header, "required": False, "schema": {"type": "string"}}
        )
    if endpoint.body_schema is not None:
        operation["requestBody"] = {
            "required": not endpoint.body_optional,
            "content": {"application/json": {"schema": endpoint.body_schema}},
        }
    if endpoint.raw_body:
        operation["requestBody"] = {"required": True, "content": {"*/*": {"schema": BINARY}}}
    success: dict[str, Any] = {"description": "Success"}
    if endpoint.binary_response:
        success["content"] = {media: {"schema": BINARY} for media in DOCUMENT_FORMATS}
    elif endpoint.text_response:
        success["content"] = {"text/plain": {"schema": {"type": "string"}}}
    elif endpoint.response_schema is not None:
        success["content"] = {"application/json": {"schema": endpoint.response_schema}}
    else:
        success["content"] = {"application/json": {"schema": {"type": "object"}}}
    operation["responses"][str(endpoint.status)] = success
    if endpoint.status == 201:
        operation["responses"]["200"] = {
            **success,
            "description": "The same request was made before (Idempotency-Key)",
        }
    for status, description in ERROR_RESPONSES.items():
        if endpoint.is_public and status == "403":
            continue
        if endpoint.is_public and status == "401" and not endpoint.checks_credentials:
            continue
        operation["responses"][status] = {"description": description, "content": PROBLEM}
    # eventlet's HTTP server answers this itself, before any endpoint runs,
    # when the request line passes its limit (8 KiB): no problem document.
    operation["responses"]["414"] = {
        "description": "The path and query are longer than the server reads (no body)"
    }
    return operation


@lru_cache(maxsize=4)
def openapi_document(service_class: type) -> dict[str, Any]:
    spec = APISpec(
        title="K-Smart platform API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Citizens apply, officials decide, auditors verify. "
            "Errors are application/problem+json listing every problem at once."
        },
    )
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    spec.components.schema("Problem", schema=schemas.Problem)
    paths: dict[str, dict[str, Any]] = {}
    for name, endpoint in endpoints(service_class):
        path = PATH_PARAMETER.sub(r"{\2}", endpoint.url)
        for method in endpoint.method.split(","):
            paths.setdefault(path, {})[method.lower()] = _operation(name, endpoint)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
