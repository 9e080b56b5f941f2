"""From the gateway's problem documents (RFC 7807, every problem listed at
once) to what a page shows: each problem beside its field and all of them
in a summary at the top, in the page's language.

A form names, for each field of the API it sends, the field of its own
that carries it and the message to show there; a problem the form cannot
place goes to the summary alone, in the gateway's words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ksmart_portal.gateway import Reply
from ksmart_portal.i18n import N_, gettext


@dataclass(frozen=True)
class PageError:
    message: str
    field: str | None = None  # the form field's id; None: the page as a whole


@dataclass
class PageErrors:
    errors: list[PageError] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def add(self, message: str, field: str | None = None) -> None:
        self.errors.append(PageError(message, field))

    def for_field(self, name: str) -> list[str]:
        return [error.message for error in self.errors if error.field == name]


@dataclass(frozen=True)
class FormField:
    """Where an API field's problems go: a form field, and the message
    (a catalogue msgid) to show there instead of the gateway's words."""

    name: str
    message: str | None = None


# Answers that concern the request as a whole, by HTTP status.
STATUS_MESSAGES = {
    401: N_("You need to sign in again."),
    403: N_("You are not allowed to do that."),
    404: N_("We could not find that."),
    409: N_("Someone else changed this first. Look at it again and try again."),
    413: N_("That is too large."),
}
TOO_MANY_TRIES = N_("Too many tries. Wait %(minutes)s minutes and try again.")


def page_errors(reply: Reply, fields: Mapping[str, FormField] | None = None) -> PageErrors:
    """Every problem of an unsuccessful reply, placed and translated."""
    fields = fields or {}
    errors = PageErrors()
    for problem in reply.body.get("problems") or []:
        if not isinstance(problem, Mapping):
            continue
        target = fields.get(str(problem.get("field", "")))
        message = str(problem.get("message", ""))
        if target is None:
            errors.add(message or _status_message(reply))
        else:
            errors.add(gettext(target.message) if target.message else message, target.name)
    if not errors:
        errors.add(_status_message(reply))
    return errors


def _status_message(reply: Reply) -> str:
    if reply.status == 429:
        seconds = _whole(reply.headers.get("Retry-After"), default=60)
        return gettext(TOO_MANY_TRIES, minutes=max(1, -(-seconds // 60)))
    if reply.status in STATUS_MESSAGES:
        return gettext(STATUS_MESSAGES[reply.status])
    return str(reply.body.get("detail") or reply.body.get("title") or reply.status)


def _whole(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
