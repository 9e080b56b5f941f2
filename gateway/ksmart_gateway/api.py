"""The gateway's HTTP entrypoint: nameko's http handler, extended once with
what every endpoint needs, so no endpoint repeats it:

- who may call it (`allowed_roles`, or PUBLIC), checked before the worker
  runs, with the caller's Principal passed in as `principal`;
- its query and body, each schema named once in the declaration (`query=`,
  `body=`), validated and passed in as `query` and `body` (the `api`
  decorator);
- errors rendered as application/problem+json through one table, and so
  are the URLs no endpoint matches (ProblemWebServer);
- the request id: the gateway's own, made for each request, recorded in
  events and answered in X-Request-ID; a client's X-Request-ID is only
  logged beside it, never recorded (a client does not choose what the
  immutable log says);
- a body sent in chunks read like any other (ProblemWsgiApp), and every
  body read no further than its limit (read_json, read_callback);
- the metadata the OpenAPI document is generated from.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, partial, wraps
from typing import Any

import eventlet
from eventlet.event import Event
from eventlet.wsgi import Input as EventletInput
from marshmallow import Schema
from nameko.extensions import SharedExtension, register_entrypoint
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Request, Response

from ksmart_common import config, errors, metrics
from ksmart_common.domain.intake import language
from ksmart_common.logging import get_logger
from ksmart_common.rpc import call
from ksmart_gateway import problems
from ksmart_gateway.auth import Principal, bearer_token
from ksmart_gateway.token_keys import TokenKeys

log = get_logger(__name__)

PREFIX = "/api/v1"
PUBLIC = ("public",)
REQUEST_ID_HEADER = "X-Request-ID"
MAX_BODY_BYTES = 256 * 1024
MAX_CALLBACK_BYTES = 16 * 1024
# An unknown kid makes the gateway fetch the JWKS again, at most this often:
# a key rotated in is trusted within seconds, and a flood of made-up kids
# costs the identity service one call per interval.
JWKS_REFRESH_SECONDS = float(config.env("KSMART_JWKS_REFRESH_SECONDS", "5"))
REVOCATIONS_MAX_AGE_SECONDS = 60.0


@dataclass
class ApiResult:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class Authenticator(SharedExtension):
    """Verifies bearer tokens locally against the identity service's JWKS,
    trusting only the keys the deployment's key root endorses, fetched by a
    background green thread every KSMART_TOKEN_KEYS_REFRESH_SECONDS (a
    retired key is refused within that time) and again (at most every few
    seconds) when an unknown key appears: ksmart_gateway.token_keys.

    Revoked sessions (logout, a refresh token reused, an official's roles
    changed) are fetched from the identity service by one background green
    thread every few seconds, so a revoked session's tokens are refused
    within that time and no request waits for the fetch. If the list could
    not be had for longer than REVOCATIONS_MAX_AGE_SECONDS, requests are
    refused (503) rather than served on a list too old to trust."""

    def setup(self) -> None:
        self._keys = TokenKeys.from_environment(self._fetch_jwks, JWKS_REFRESH_SECONDS)
        self._revoked: frozenset[str] = frozenset()
        self._revocations_at: float | None = None
        self._poll_seconds = float(config.env("KSMART_REVOCATION_POLL_SECONDS", "2"))

    def start(self) -> None:
        self.container.spawn_managed_thread(self._poll_revocations)
        self.container.spawn_managed_thread(self._refresh_token_keys)

    def _refresh_token_keys(self) -> None:
        while True:
            eventlet.sleep(self._keys.refresh_seconds)
            try:
                self._keys.refresh()
            except Exception as error:  # noqa: BLE001 - kept trying; staleness is checked
                log.warning("token keys not refreshed", error=repr(error))

    def _poll_revocations(self) -> None:
        while True:
            try:
                self._fetch_revocations_now()
            except Exception as error:  # noqa: BLE001 - kept trying; staleness is checked
                log.warning("revoked sessions not fetched", error=repr(error))
            eventlet.sleep(self._poll_seconds)

    def _fetch_revocations_now(self) -> None:
        answer = call(self._fetch_revocations, timeout=5)
        self._revoked = frozenset(entry["sid"] for entry in answer["sessions"])
        self._revocations_at = time.monotonic()

    def _fetch_jwks(self) -> dict:
        return call(self._fetch_jwks_now, timeout=5)

    def _fetch_jwks_now(self) -> dict:
        with ClusterRpcProxy(self.container.config) as cluster:
            return cluster.identity.jwks()

    def authenticate(self, request: Request) -> Principal:
        token = bearer_token(request.headers.get("Authorization"))
        principal = self._keys.verifier_for(token).verify(token)
        if principal.session_id in self._revocations():
            raise errors.Unauthenticated("the session has ended; sign in again")
        return principal

    def _revocations(self) -> frozenset[str]:
        if self._revocations_at is None:
            self._fetch_revocations_now()  # the first request, before the poller's first turn
        elif time.monotonic() - self._revocations_at > REVOCATIONS_MAX_AGE_SECONDS:
            raise errors.ServiceUnavailable("revoked sessions could not be checked lately")
        return self._revoked

    def _fetch_revocations(self) -> dict:
        with ClusterRpcProxy(self.container.config) as cluster:
            return cluster.identity.revoked_sessions()


class ProblemWsgiApp(WsgiApp):
    """nameko's WSGI app (nameko.web.server.WsgiApp), with the routing's own
    refusals (no such URL, as a path parameter that is not a uuid; a method
    the URL does not have) answered as problem documents like every other
    error, not as werkzeug's HTML pages."""

    def __call__(self, environ, start_response):
        mark_chunked_input_terminated(environ)
        # Shallow, as nameko's: nothing reads the body before the endpoint.
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
        except RequestRedirect as redirect:
            return redirect(environ, start_response)
        except HTTPException as error:
            # werkzeug's headers (Allow, for a 405) with a problem for a body.
            headers = {
                name: value
                for name, value in error.get_headers(environ)
                if name.lower() != "content-type"
            }
            response = problems.problem_response(
                error.code, error.name, error.description, headers=headers
            )
            return response(environ, start_response)
        request.path_values = values
        return provider.handle_request(request)(environ, start_response)


def mark_chunked_input_terminated(environ: dict) -> None:
    """Let werkzeug read a body sent with Transfer-Encoding: chunked.

    Without a Content-Length, werkzeug reads a body only if the server says
    it ends the input stream itself (`wsgi.input_terminated`); otherwise it
    gives an empty body, lest a read run on forever. eventlet's input does end
    a chunked body (it de-chunks and stops at the last, empty, chunk) but
    does not say so. Marked only for that input: any other stream stays
    bounded by its Content-Length as werkzeug wraps it. The stream itself is
    unbounded, so every reader asks for no more than its limit + 1 bytes
    (read_json, read_callback, the document upload)."""
    stream = environ.get("wsgi.input")
    if isinstance(stream, EventletInput) and stream.chunked_input:
        environ["wsgi.input_terminated"] = True


class ProblemWebServer(WebServer):
    def get_wsgi_app(self) -> WsgiApp:
        return ProblemWsgiApp(self)


class ApiEndpoint(HttpRequestHandler):
    server = ProblemWebServer()
    auth = Authenticator()

    def __init__(
        self,
        method: str,
        url: str,
        *,
        summary: str,
        allowed_roles: Iterable[str],
        body: type[Schema] | None = None,
        body_optional: bool = False,
        query: type[Schema] | None = None,
        response: type[Schema] | None = None,
        status: int = 200,
        tag: str = "files",
        headers: tuple[str, ...] = (),
        raw_body: bool = False,
        binary_response: bool = False,
        text_response: bool = False,
        checks_credentials: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(method, url, **kwargs)
        self.summary = summary
        self.allowed_roles = tuple(allowed_roles)
        self.body_schema = body
        # A request without a body loads as an empty one (the schema's
        # defaults): a body added to an endpoint later keeps old callers working.
        self.body_optional = body_optional
        self.query_schema = query
        self.response_schema = response
        self.status = status
        self.tag = tag
        self.request_headers = headers
        # For the OpenAPI document: the body is bytes, not JSON (an upload),
        # or the answer is a document's bytes.
        self.raw_body = raw_body
        self.binary_response = binary_response
        # The answer is text/plain (the transparency log's notes and key).
        self.text_response = text_response
        # A public endpoint that checks proof of its own (a password, a
        # sign-in code, a provider's signature): it answers 401 without it.
        self.checks_credentials = checks_credentials

    @property
    def is_public(self) -> bool:
        return self.allowed_roles == PUBLIC

    def handle_request(self, request: Request) -> Response:
        """nameko's handling, with the request id made the worker's
        correlation id: nameko passes it on with every RPC call the worker
        makes, each service logs it, and events record it in their
        metadata, so one id follows a request through every log."""
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        client_request_id = (request.headers.get(REQUEST_ID_HEADER) or "")[:200] or None
        request.environ["ksmart.request_id"] = request_id
        request.shallow = False
        try:
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            finished = Event()
            self.container.spawn_worker(
                self,
                args,
                kwargs,
                context_data={"correlation_id": request_id, "request_id": request_id},
                handle_result=partial(self.handle_result, finished),
            )
            response = self.response_from_result(finished.wait())
        except Exception as exc:  # noqa: BLE001 - every error becomes a problem document
            response = self.response_from_exception(exc)
        response.headers[REQUEST_ID_HEADER] = request_id
        elapsed = time.perf_counter() - started
        metrics.HTTP_REQUESTS.labels(self.method, self.url, str(response.status_code)).inc()
        metrics.HTTP_SECONDS.labels(self.method, self.url).observe(elapsed)
        log.info(
            "request",
            method=request.method,
            route=self.url,
            status=response.status_code,
            duration_ms=round(elapsed * 1000, 1),
            request_id=request_id,
            correlation_id=request_id,
            client_request_id=client_request_id,
        )
        return response

    def get_entrypoint_parameters(self, request: Request):
        args, kwargs = super().get_entrypoint_parameters(request)
        principal = None
        if not self.is_public:
            principal = self.auth.authenticate(request)
            if not any(principal.has_role(role) for role in self.allowed_roles):
                raise errors.Forbidden(f"this endpoint is for: {', '.join(self.allowed_roles)}")
        return args, {**kwargs, "principal": principal}

    def response_from_result(self, result) -> Response:
        if isinstance(result, Response):
            return result
        return Response(
            json.dumps(result.body, ensure_ascii=False),
            status=result.status,
            headers=result.headers,
            content_type="application/json",
        )

    def response_from_exception(self, exc: Exception) -> Response:
        response = problems.response_for(exc)
        if response is not None:
            return response
        log.error("unhandled error", error=repr(exc), url=self.url)
        return problems.problem_response(500, "Internal error", "the error was logged")


def api(method: str, url: str, **declaration: Any) -> Callable[[Callable], Callable]:
    """Make a service method an endpoint, declared by ApiEndpoint's parameters.

    The query and body schemas are named here and nowhere else: they
    validate the request, what they load reaches the method as its `query`
    and `body` arguments, and the OpenAPI document describes them
    (openapi.py). They are loaded inside the worker, after the caller's role
    was checked and just before the method runs, so a request with bad
    input is timed and counted like any other worker
    (ksmart_common.operations)."""
    query_schema = declaration.get("query")
    body_schema = declaration.get("body")

    def register(endpoint_method: Callable) -> Callable:
        @wraps(endpoint_method)
        def with_declared_input(service, request: Request, principal, **path_values):
            declared: dict[str, dict] = {}
            if query_schema is not None:
                declared["query"] = read_query(request, query_schema)
            if body_schema is not None:
                if declaration.get("body_optional") and not has_body(request):
                    declared["body"] = instance(body_schema).load({})
                else:
                    declared["body"] = read_json(request, body_schema)
            return endpoint_method(service, request, principal, **path_values, **declared)

        register_entrypoint(with_declared_input, ApiEndpoint(method, url, **declaration))
        return with_declared_input

    return register


def request_id(request: Request) -> str:
    return request.environ["ksmart.request_id"]


def request_meta(request: Request, **extra: Any) -> dict[str, Any]:
    """What a service is told of the request behind a command: the gateway's
    request id, which its events' metadata records, and the language its
    problems are to be written in."""
    return {
        "request_id": request_id(request),
        "correlation_id": request_id(request),
        # The language problems are written in: Accept-Language, English by default.
        "lang": language(request.headers.get("Accept-Language")),
        **extra,
    }


def has_body(request: Request) -> bool:
    """Whether a body came: a length above zero, or chunks (see
    mark_chunked_input_terminated)."""
    return bool(request.content_length) or bool(request.environ.get("wsgi.input_terminated"))


def read_json(request: Request, schema: type[Schema]) -> dict:
    """The validated body, or an error naming every problem at once."""
    if request.mimetype != "application/json":
        raise problems.UnsupportedMediaType("send the body as application/json")
    too_large = errors.PayloadTooLarge(
        "the body is too large",
        [{"field": "body", "message": f"at most {MAX_BODY_BYTES} bytes"}],
    )
    raw = read_body(request, MAX_BODY_BYTES, too_large)
    try:
        document = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite)
        _check_text(document)
    except (ValueError, RecursionError) as error:
        raise problems.BadRequestBody(f"the body is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise errors.InvalidInput("the body must be a JSON object")
    return instance(schema).load(document)


def _refuse_constant(name: str) -> None:
    # Python's json takes NaN and Infinity, which JSON does not have and no
    # event could store.
    raise ValueError(f"{name} is not a JSON number")


def _check_text(value: Any) -> None:
    """ValueError for text no event can hold: a lone surrogate (\\ud800 is
    valid JSON, but not UTF-8) or a NUL (PostgreSQL text has none)."""
    if isinstance(value, str):
        value.encode("utf-8")  # UnicodeEncodeError is a ValueError
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999
        raise ValueError(f"{text} is too large a number")
    return number


def read_callback(request: Request) -> str:
    """A provider's callback body (a payment, a delivery receipt) as text.
    Anyone can call before its signature is checked, so no more is read
    than a callback can be."""
    raw = read_body(
        request, MAX_CALLBACK_BYTES, errors.PayloadTooLarge("the callback is too large")
    )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise errors.InvalidInput("the callback is not UTF-8 text") from error


def read_body(request: Request, max_bytes: int, too_large: Exception) -> bytes:
    """The body's bytes, or too_large (raised) if there are more than max_bytes.

    A body that declares a length over the limit is refused unread; one sent
    in chunks, with no length to judge by, is read no further than
    max_bytes + 1 bytes, so an oversized body costs no more memory than the
    limit (eventlet discards the rest off the socket after the answer)."""
    if (request.content_length or 0) > max_bytes:
        raise too_large
    parts: list[bytes] = []
    size = 0
    while size <= max_bytes:
        part = request.stream.read(max_bytes + 1 - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > max_bytes:
        raise too_large
    return b"".join(parts)


def read_query(request: Request, schema: type[Schema]) -> dict:
    """The validated query. A NUL, which no PostgreSQL text can hold, is
    refused in any parameter, each named, as in a JSON body (_check_text);
    what else a parameter may hold is its schema's (a document's name, say,
    is cleaned rather than refused)."""
    problems = [
        {"field": name, "message": "must not contain NUL characters"}
        for name, value in request.args.items(multi=True)
        if "\x00" in value
    ]
    if problems:
        raise errors.InvalidInput("the query has NUL characters", problems)
    return instance(schema).load(request.args.to_dict())


@cache
def instance(schema: type[Schema]) -> Schema:
    """One instance per schema class: building one copies every field."""
    return schema()
