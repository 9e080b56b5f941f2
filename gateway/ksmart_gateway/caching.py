"""Answers a client or a cache may keep: the catalogue and the local-body
directory change only when a new version ships, so their answers carry an
ETag and a Cache-Control, and a caller who has one gets 304 Not Modified."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from werkzeug.wrappers import Request, Response

from ksmart_gateway.api import ApiResult

# Answers may be cached for a while, and one pinned to a version (or hash)
# for ever.
CATALOGUE_MAX_AGE = 300
IMMUTABLE = "public, max-age=31536000, immutable"


def public(max_age: int) -> str:
    """The Cache-Control that lets any cache keep an answer max_age seconds."""
    return f"public, max-age={max_age}"


def cacheable(request: Request, body: Any, tag: str, cache_control: str) -> Response | ApiResult:
    """The answer with its ETag, or 304 Not Modified if the caller has it."""
    headers = {"ETag": f'"{tag}"', "Cache-Control": cache_control}
    # Weak comparison, as If-None-Match asks: a cache may hand back W/"...".
    if request.if_none_match.contains_weak(tag):
        return Response(status=304, headers=headers)
    return ApiResult(body, headers=headers)


def read_mostly(request: Request, body: Any) -> Response | ApiResult:
    """An answer tagged by its content, kept for CATALOGUE_MAX_AGE."""
    tag = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return cacheable(request, body, tag, public(CATALOGUE_MAX_AGE))
