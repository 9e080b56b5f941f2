"""The auditor's check of events' signatures (ksmart_common.event_signatures):
each event signed by an event key the deployment's root endorses, the root
pinned by the auditor (--key-root, or KSMART_AUDIT_KEY_ROOT), the keys read
from the gateway (GET /api/v1/event-keys) and believed only as endorsed.

Events stored before events were signed carry no signature, and existing
logs verify unchanged: an unsigned event is accepted only before the first
signed event of the log, in position order (counted as "legacy, unsigned").
From the first signed event on, an unsigned event, or one whose signature
does not verify for its hash by an endorsed key, is a finding naming it:
an insider with INSERT on `events` can write a right chain hash, never
that signature.

A check of one file or a range of the log sees only part of the order, so
an unsigned event that comes before every signed one it read is counted,
not judged; the whole log's check judges every event.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ksmart_audit.checks import Findings, Problem
from ksmart_common.envelope import StoredEvent
from ksmart_common.event_signatures import why_not_signed
from ksmart_common.key_anchor import EVENT, KeyAnchor, public_keys

KEY_ROOT_ENV = "KSMART_AUDIT_KEY_ROOT"
EVENT_KEYS_PATH = "/api/v1/event-keys"

UNSIGNED = "unsigned event"
MIS_SIGNED = "mis-signed event"


def key_root_from(text: str | None) -> KeyAnchor | None:
    """The pinned root (--key-root, else KSMART_AUDIT_KEY_ROOT), or None;
    ValueError if malformed."""
    text = text or os.environ.get(KEY_ROOT_ENV)
    return KeyAnchor.from_text(text) if text else None


def endorsed_event_keys(jwks: Mapping[str, Any], anchor: KeyAnchor) -> dict[str, Ed25519PublicKey]:
    """The published event keys the pinned root endorses, by kid."""
    return public_keys(jwks, EVENT, anchor)


class SignatureChecker:
    """Checks events in reading order (position order); see the module."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey], *, whole_log: bool) -> None:
        self.keys = dict(keys)
        self.whole_log = whole_log
        self.findings = Findings()
        self.signed = 0
        self.legacy = 0  # unsigned, before the first signed event
        self.first_signed: int | None = None

    def check(self, event: StoredEvent) -> None:
        envelope = event.envelope
        where = {
            "stream_id": envelope.stream_id,
            "version": envelope.stream_version,
            "position": envelope.global_position,
        }
        if envelope.signature is None and self.first_signed is None:
            self.legacy += 1
            return
        # The stored hash is what is signed; whether it is the hash of the
        # event's text is the chain check's to say.
        problem = why_not_signed(envelope.signature, envelope.hash, self.keys)
        if problem is None:
            self.signed += 1
            if self.first_signed is None:
                self.first_signed = envelope.global_position
            return
        if envelope.signature is None:
            self.findings.add(
                Problem(
                    UNSIGNED,
                    f"{problem}, though events are signed from global position "
                    f"{self.first_signed} on: not written by the event store's writer (forged?)",
                    **where,
                )
            )
            return
        if self.first_signed is None:
            self.first_signed = envelope.global_position
        self.findings.add(Problem(MIS_SIGNED, f"{problem}: not the writer's signature", **where))

    def finish(self) -> Findings:
        return self.findings

    def notes(self) -> list[str]:
        if self.first_signed is None:
            text = (
                f"event signatures: none of the {self.legacy:,} events read is signed "
                f"(legacy, unsigned: stored before events were signed)"
            )
        else:
            text = (
                f"event signatures: {self.signed:,} verified by {len(self.keys)} endorsed "
                f"event key(s), signed from global position {self.first_signed:,} on; "
                f"{self.legacy:,} legacy, unsigned, before it"
            )
        if not self.whole_log and self.legacy:
            text += " (only the whole log's check tells legacy events from forged ones)"
        return [text]


def signature_verification(
    root_text: str | None, source: Any, *, whole_log: bool
) -> tuple[SignatureChecker | None, list[str]]:
    """The signature check `verify` runs beside the chains (keys read from
    the gateway), or None and why not. ValueError: a malformed root."""
    from ksmart_audit.source import HttpSource

    anchor = key_root_from(root_text)
    if anchor is None:
        return None, [
            f"event signatures were not checked: pin the key root with --key-root "
            f"(or {KEY_ROOT_ENV})"
        ]
    if not isinstance(source, HttpSource):
        raise ValueError("event signatures are checked with the keys the gateway publishes")
    keys = endorsed_event_keys(source.get(EVENT_KEYS_PATH), anchor)
    return SignatureChecker(keys, whole_log=whole_log), []
