"""Errors as RFC 7807 problem documents: the one table from error type to
HTTP status, and the one function that renders a problem."""

from __future__ import annotations

import json
from typing import Any

from marshmallow import ValidationError
from werkzeug.wrappers import Response

from ksmart_common import errors

PROBLEM_CONTENT_TYPE = "application/problem+json"


class BadRequestBody(errors.KsmartError):
    """The body could not be read as JSON at all (raised in the gateway only)."""

    title = "The request body is not valid JSON"


class UnsupportedMediaType(errors.KsmartError):
    title = "Unsupported media type"


STATUS_BY_ERROR: dict[type[errors.KsmartError], int] = {
    BadRequestBody: 400,
    UnsupportedMediaType: 415,
    errors.InvalidInput: 422,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.VersionConflict: 409,
    errors.ActionNotAllowed: 409,
    errors.IdempotencyKeyReused: 422,
    errors.ServiceUnavailable: 503,
    errors.PayloadTooLarge: 413,
    errors.TooManyRequests: 429,
}


def flatten_messages(messages: Any, prefix: str = "") -> list[dict[str, str]]:
    """marshmallow's nested messages as a flat list: one entry per problem."""
    if isinstance(messages, dict):
        problems = []
        for key, value in messages.items():
            field = f"{prefix}.{key}" if prefix else str(key)
            problems.extend(flatten_messages(value, field))
        return problems
    if isinstance(messages, list) and all(isinstance(item, str) for item in messages):
        return [{"field": prefix or "body", "message": message} for message in messages]
    if isinstance(messages, list):
        return [p for item in messages for p in flatten_messages(item, prefix)]
    return [{"field": prefix or "body", "message": str(messages)}]


def problem_response(
    status: int,
    title: str,
    detail: str,
    problems: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    document = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if problems:
        document["problems"] = problems
    return Response(
        json.dumps(document, ensure_ascii=False),
        status=status,
        headers=headers,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def response_for(exc: Exception) -> Response | None:
    """The problem response for a known error type; None for anything else."""
    if isinstance(exc, ValidationError):
        return problem_response(
            422,
            errors.InvalidInput.title,
            "the request has problems; each is listed",
            flatten_messages(exc.messages),
        )
    if isinstance(exc, errors.KsmartError):
        status = STATUS_BY_ERROR.get(type(exc))
        if status is None:
            return None
        headers = {"Retry-After": "5"} if status == 503 else None
        if isinstance(exc, errors.TooManyRequests):
            headers = {"Retry-After": str(max(1, exc.retry_after_seconds))}
        return problem_response(status, exc.title, exc.detail, exc.problems, headers)
    return None
