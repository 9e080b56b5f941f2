"""Typed errors that cross RPC intact.

A service raises one of these; nameko serialises it and, because each class in
REMOTE_ERRORS is registered with nameko's `deserialize_to_instance` (by
ksmart_common.rpc, so that this module stays pure and the domain can raise
them), the caller gets the same type back (not a generic RemoteError). The
gateway maps each type to one HTTP status in one table
(ksmart_gateway.problems).

Arguments are kept JSON-safe because nameko turns every argument into text or
lists/dicts of text on the way: (detail, problems), where problems is a list of
{"field": ..., "message": ...} naming every problem at once.
"""

from __future__ import annotations


class KsmartError(Exception):
    title = "Request failed"

    def __init__(self, detail: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail, problems or [])

    @property
    def detail(self) -> str:
        return self.args[0]

    @property
    def problems(self) -> list[dict[str, str]]:
        return self.args[1]

    def __str__(self) -> str:
        return self.detail


class InvalidInput(KsmartError):
    title = "The request has problems"


class NotFound(KsmartError):
    title = "Not found"


class Unauthenticated(KsmartError):
    title = "Authentication required"


class Forbidden(KsmartError):
    title = "Not allowed for this caller"


class VersionConflict(KsmartError):
    """The stream moved on since the caller read it (optimistic concurrency)."""

    title = "The file has changed since you read it"

    @classmethod
    def at(cls, current: int, expected: int, stream: str = "the file") -> VersionConflict:
        """The one way to say it: `stream` is at version `current`, the
        caller expected `expected` (the event store names the stream by its
        id; a command on a file calls it the file)."""
        return cls(
            f"{stream} is at version {current}, not the expected {expected}",
            [{"field": "expected_version", "message": f"current version is {current}"}],
        )


class ActionNotAllowed(KsmartError):
    """The action is not one the file's current state offers."""

    title = "Action not allowed in the file's current state"


class IdempotencyKeyReused(KsmartError):
    title = "Idempotency-Key was already used for a different request"


class ServiceUnavailable(KsmartError):
    """A service this request needs did not answer in time (HTTP 503)."""

    title = "A service is unavailable; try again shortly"


class PayloadTooLarge(KsmartError):
    """A body or an uploaded document is larger than allowed (HTTP 413)."""

    title = "Too large"


class TooManyRequests(KsmartError):
    """Too many requests of one kind in a while (HTTP 429, with Retry-After)."""

    title = "Too many requests; try again later"

    def __init__(
        self,
        detail: str,
        problems: list[dict[str, str]] | None = None,
        retry_after_seconds: int = 60,
    ) -> None:
        Exception.__init__(self, detail, problems or [], int(retry_after_seconds))

    @property
    def retry_after_seconds(self) -> int:
        return int(self.args[2])


# Every error that crosses RPC as itself (registered by ksmart_common.rpc).
REMOTE_ERRORS = (
    InvalidInput,
    NotFound,
    Unauthenticated,
    Forbidden,
    VersionConflict,
    ActionNotAllowed,
    IdempotencyKeyReused,
    ServiceUnavailable,
    PayloadTooLarge,
    TooManyRequests,
)
