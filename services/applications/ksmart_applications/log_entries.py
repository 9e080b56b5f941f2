"""Which of a file's events a citizen is shown the transparency log's
proof for: its submission (the acknowledgement names the checkpoint that
includes it) and its certificate's issue (the public certificate check
shows that event's inclusion proof).

An entry is the event's global position, by which the checkpointer finds
its leaf, and its stored hash, the leaf's data, with which a reader checks
the proof (ksmart_portal.log_proof). The gateway asks the checkpointer for
the proofs (ksmart_gateway.log_standing); this service knows only its
events."""

from __future__ import annotations

from collections.abc import Sequence

from ksmart_common.domain.file import CERTIFICATE_ISSUED
from ksmart_common.envelope import Envelope


def log_entry(event: Envelope) -> dict:
    return {"global_position": event.global_position, "event_hash": event.hash}


def file_log_entries(events: Sequence[Envelope]) -> dict[str, dict | None]:
    """A file's stream (in version order): its first event, and the event
    that issued its certificate (None before one is issued)."""
    issued = certificate_event(events)
    return {
        "submission": log_entry(events[0]) if events else None,
        "certificate": log_entry(issued) if issued is not None else None,
    }


def certificate_event(events: Sequence[Envelope]) -> Envelope | None:
    """The event that issued the certificate the file holds: the last one
    (a file's state keeps the latest certificate)."""
    return next((e for e in reversed(events) if e.event_type == CERTIFICATE_ISSUED), None)
