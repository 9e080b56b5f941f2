"""The commands the applications service decides: small immutable values
named in the domain's language, built from the RPC's JSON arguments at the
service's edge (service.py) and handled in commands.py.

Every field is passed by keyword, so a command reads as what it asks, and
none turns a behaviour off by being left out: what a handler needs besides
the command (the catalogue's definitions, the certificate keys) it gets from
the service's dependencies, always.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from ksmart_common.domain import file as files
from ksmart_common.domain.file import Actor
from ksmart_common.domain.intake import language
from ksmart_common.domain.vocabulary import DEFAULT_LANGUAGE


@dataclass(frozen=True, kw_only=True)
class RequestContext:
    """What the gateway says of the request a command came with: its ids,
    stored in the events' metadata, and the language refusals are written in."""

    request_id: str | None = None
    correlation_id: str | None = None
    # The gateway's id for this one request: delivered twice, it decides once.
    command_id: str | None = None
    # The caller's Idempotency-Key, on a creating request.
    idempotency_key: str | None = None
    lang: str = DEFAULT_LANGUAGE

    @classmethod
    def from_rpc(cls, request: Mapping[str, Any]) -> RequestContext:
        """From the gateway's request metadata (ksmart_gateway's request_meta)."""
        return cls(
            request_id=request.get("request_id"),
            correlation_id=request.get("correlation_id"),
            command_id=request.get("command_id") or None,
            idempotency_key=request.get("idempotency_key") or None,
            lang=language(request.get("lang")),
        )


@dataclass(frozen=True, kw_only=True)
class Application:
    """An application to file, by whoever files it (the actor)."""

    service_code: str
    local_body: str
    form: Mapping[str, Any]
    # Document code -> sha256 of the actor's upload.
    documents: Mapping[str, str]
    actor: Actor
    request: RequestContext


@dataclass(frozen=True, kw_only=True)
class SubmitApplication(Application):
    """A citizen files an application: it becomes a new file."""


@dataclass(frozen=True, kw_only=True)
class CitizensConsent:
    """The consent a citizen gave counter staff: the identity service's
    consent id and the one-time code the citizen read out."""

    consent_id: str
    code: str


@dataclass(frozen=True, kw_only=True)
class FileForCitizen(Application):
    """Counter staff (the actor) file an application in a citizen's name,
    with the citizen's consent; the citizen becomes the file's applicant.
    The documents are the filer's uploads (scanned at the counter)."""

    consent: CitizensConsent


class FileCommand(Protocol):
    """A command on a file that exists (commands.decide_and_append)."""

    # Whether the actor must be one who may read the file (else: no such
    # file). A person must; the platform's own actors (the escalation timer,
    # a payment provider's proven callback) act on whichever file it names.
    checks_reach: ClassVar[bool]

    @property
    def file_id(self) -> str: ...

    @property
    def actor(self) -> Actor: ...

    @property
    def request(self) -> RequestContext: ...


@dataclass(frozen=True, kw_only=True)
class PersonsCommand:
    """A command a person (a citizen, an official) sends on a file: they
    must be one who may read it."""

    checks_reach: ClassVar[bool] = True

    file_id: str
    actor: Actor
    request: RequestContext


@dataclass(frozen=True, kw_only=True)
class TakeAction(PersonsCommand):
    """An official's decision on a file, or the applicant's step (a reply
    to a clarification, with corrected answers)."""

    action: str
    remarks: str | None = None
    # The version the decision was made on (If-Match); None when the
    # caller named none: the decision is taken on the file as it is.
    expected_version: int | None
    # Corrected form answers, with a reply to a clarification.
    answers: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AttachDocument(PersonsCommand):
    """The applicant attaches one of their uploads to their file."""

    code: str
    sha256: str


@dataclass(frozen=True, kw_only=True)
class AssignFile(PersonsCommand):
    """A file handed to a named official (a supervisor's, or taken himself)."""

    assignee: Actor


# The workflow service's escalation timer acts as this actor.
ESCALATION_TIMER = Actor("workflow-escalation-timer", (files.SYSTEM,))


@dataclass(frozen=True, kw_only=True)
class EscalateFile:
    """The workflow service's timer found the file overdue at `seen_version`:
    that version is the expected one, so two timers cannot both escalate."""

    checks_reach: ClassVar[bool] = False

    file_id: str
    seen_version: int
    now: datetime

    @property
    def actor(self) -> Actor:
        return ESCALATION_TIMER

    @property
    def request(self) -> RequestContext:
        return RequestContext(correlation_id=f"escalation-{self.file_id}")


@dataclass(frozen=True, kw_only=True)
class PaymentCallback:
    """A payment provider's callback, passed on by the gateway unread: only
    its signature, checked by the provider's code, makes it a payment."""

    body: str
    signature: str | None
    request: RequestContext


@dataclass(frozen=True, kw_only=True)
class RecordPayment:
    """A payment the provider captured, counted on the file it names."""

    checks_reach: ClassVar[bool] = False

    file_id: str
    payment_id: str
    provider: str
    amount_paise: int
    request: RequestContext

    @property
    def actor(self) -> Actor:
        return Actor(f"payment-provider:{self.provider}", (files.PAYMENT_PROVIDER,))
