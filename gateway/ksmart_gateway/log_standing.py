"""The citizen's proof (issue 18): where a file's submission and a
certificate's issue stand in the transparency log, added to a file's
answer (GET /files/{id}) and to the public certificate checks.

The applications service names the events (their global positions and
stored hashes: ksmart_applications.log_entries); the checkpointer proves
each against its latest checkpoint (`included`), or says no checkpoint
includes it yet. An entry is then either the proof, with the signed
checkpoint note and the event's hash, so a reader checks it without
trusting the gateway (the portal does: ksmart_portal.log_proof), or null
while it waits for the next checkpoint (at most KSMART_CHECKPOINT_SECONDS).

The log is a witness to the answer, not part of it: if the checkpointer
does not answer quickly, the file or certificate is still answered, with
`transparency` null (unknown), never a 503 for the whole page."""

from __future__ import annotations

from collections.abc import Mapping

from marshmallow import fields

from ksmart_common.errors import ServiceUnavailable
from ksmart_common.logging import get_logger
from ksmart_common.rpc import call
from ksmart_gateway import schemas
from ksmart_gateway.caching import public
from ksmart_gateway.transparency import CHECKPOINT_MAX_AGE, EventInclusion

log = get_logger(__name__)

# A page waits this long at most for the log's word.
INCLUDED_TIMEOUT_SECONDS = 2.0
# A certificate check not yet checkpointed is asked again each time, so it
# shows its proof as soon as a checkpoint includes it; once included, it is
# kept as long as the latest checkpoint is (it moves on as the log grows).
PENDING_CACHE = "no-cache"
INCLUDED_CACHE = public(CHECKPOINT_MAX_AGE)

Entries = Mapping[str, Mapping | None]


class LoggedEvent(EventInclusion):
    """An event's inclusion proof against the latest checkpoint."""

    event_hash = fields.String(
        metadata={"description": "the event's stored hash (hex): the leaf's data"}
    )


def _entry_field(description: str) -> fields.Nested:
    return fields.Nested(LoggedEvent, allow_none=True, metadata={"description": description})


class FileTransparency(schemas.StrictSchema):
    submission = _entry_field("the submission's proof; null until a checkpoint includes it")
    certificate = _entry_field("the certificate's issue's proof; null until issued and included")


class CertificateTransparency(schemas.StrictSchema):
    certificate = _entry_field("the issuing event's proof; null until a checkpoint includes it")


class FileWithTransparency(schemas.FileResponse):
    transparency = fields.Nested(
        FileTransparency,
        allow_none=True,
        metadata={"description": "the file's events in the public log; null: no answer from it"},
    )


class CertificateVerdictWithTransparency(schemas.CertificateVerdict):
    transparency = fields.Nested(
        CertificateTransparency,
        allow_none=True,
        metadata={
            "description": "a genuine certificate's issue in the public log; null when it is "
            "not genuine or the log is not answering"
        },
    )


def standing(checkpointer, entries: Entries) -> dict[str, dict | None] | None:
    """Each named entry's proof (None: not yet in a checkpoint, or no such
    event); None as a whole when the checkpointer does not answer."""
    positions = [entry["global_position"] for entry in entries.values() if entry]
    proofs: Mapping[str, dict | None] = {}
    if positions:
        try:
            proofs = call(checkpointer.included, positions, timeout=INCLUDED_TIMEOUT_SECONDS)
        except ServiceUnavailable as error:
            log.warning("the transparency log did not answer", error=str(error))
            return None
    return {name: _logged(entry, proofs) for name, entry in entries.items()}


def _logged(entry: Mapping | None, proofs: Mapping[str, dict | None]) -> dict | None:
    proof = None if entry is None else proofs.get(str(entry["global_position"]))
    return None if proof is None else {**proof, "event_hash": entry["event_hash"]}


def cache_control(transparency: Mapping[str, dict | None] | None) -> str:
    """How long a public answer carrying `transparency` may be kept."""
    included = transparency is not None and all(transparency.values())
    return INCLUDED_CACHE if included else PENDING_CACHE
