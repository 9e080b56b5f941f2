"""`ksmart-audit verify` against the transparency log: the newest checkpoint
fetched before the events are read (so the events read cover it), checked
(log_checks.open_checkpoint, check_against_seen), every event fed to the
tree as it streams past, and the checkpoint remembered for next time.

The auditor's state is one small JSON file per log (by default
~/.ksmart-audit/<origin>.checkpoint): the last checkpoint seen, its note and
when. It is written only for a checkpoint that verified and extends the one
before, so a rolled-back or forked log never replaces the evidence."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ksmart_audit.checks import Findings, Problem
from ksmart_audit.log_checks import (
    CheckpointRefused,
    Leaf,
    Moment,
    OpenedCheckpoint,
    SeenCheckpoint,
    TreeChecker,
    check_against_seen,
    open_checkpoint,
)
from ksmart_audit.log_client import LogClient
from ksmart_audit.source import HttpSource
from ksmart_audit.state_files import read_json, write_json_atomically
from ksmart_common.signed_note import Verifier

LOG_KEY_ENV = "KSMART_AUDIT_LOG_KEY"
WITNESSES_ENV = "KSMART_AUDIT_WITNESSES"
STATE_FOLDER = Path("~/.ksmart-audit")


@dataclass(frozen=True)
class LogOptions:
    log_key: Verifier
    witnesses: tuple[Verifier, ...]
    quorum: int
    state_path: Path
    merge_delay: float


def default_state_path(origin: str) -> Path:
    return STATE_FOLDER.expanduser() / (re.sub(r"[^A-Za-z0-9._-]+", "_", origin) + ".checkpoint")


def leaf_of(document: Any) -> Leaf:
    """An event document as a leaf, read leniently: an event that is not a
    valid envelope is still a leaf of the log (the chain check names it)."""
    if not isinstance(document, dict):
        return Leaf(hash="")
    recorded_at = document.get("recorded_at")
    try:
        moment = datetime.fromisoformat(recorded_at) if isinstance(recorded_at, str) else None
    except ValueError:
        moment = None
    return Leaf(
        hash=document.get("hash") if isinstance(document.get("hash"), str) else "",
        stream_id=document.get("stream_id"),
        version=document.get("stream_version"),
        position=document.get("global_position"),
        recorded_at=moment,
    )


class LogVerification:
    def __init__(self, source: HttpSource, options: LogOptions) -> None:
        self.source = source
        self.client = LogClient(source)
        self.options = options
        self.findings = Findings()
        self.opened: OpenedCheckpoint | None = None
        self.seen: SeenCheckpoint | None = None
        self.tree: TreeChecker | None = None
        self.extends_seen = False
        self._seen_at = 0.0

    def begin(self) -> None:
        """Fetch and check the newest checkpoint (before any event is read)."""
        options = self.options
        seen_at = time.time()
        try:
            self.opened = open_checkpoint(
                self.client.checkpoint(), options.log_key, options.witnesses, options.quorum
            )
        except CheckpointRefused as refused:
            self.findings.add(refused.problem)
            return
        document = read_json(options.state_path)
        self.seen = SeenCheckpoint.from_json(document) if document else None
        checkpoint = self.opened.checkpoint
        if self.seen is not None and self.seen.origin != checkpoint.origin:
            self.findings.add(
                Problem(
                    "state of another log",
                    f"{options.state_path} holds a checkpoint of another log",
                    expected=checkpoint.origin,
                    found=self.seen.origin,
                )
            )
            self.seen = None
            return
        problem = check_against_seen(self.seen, checkpoint, self.client.consistency)
        if problem is not None:
            self.findings.add(problem)
        else:
            self.extends_seen = True
        moments = self.opened.moments()
        if self.seen is not None:
            moments.append(Moment(self.seen.size, self.seen.seen_at, "this auditor"))
        self.tree = TreeChecker(checkpoint, moments, options.merge_delay, self.findings)
        self._seen_at = seen_at

    def follow(self, documents: Iterable[Any]) -> Iterator[Any]:
        """The documents, each fed to the tree on its way past."""
        for document in documents:
            if self.tree is not None:
                self.tree.add(leaf_of(document))
            yield document

    def finish(self) -> Findings:
        if self.tree is not None:
            self.tree.finish(self.client.consistency, self._reread)
            if self.extends_seen:
                self._remember()
        return self.findings

    def _reread(self, after: int | None, count: int) -> list[Leaf]:
        leaves = []
        for document in self.source.log(after or 0):
            leaves.append(leaf_of(document))
            if len(leaves) == count:
                break
        return leaves

    def _remember(self) -> None:
        assert self.opened is not None
        checkpoint = self.opened.checkpoint
        seen = SeenCheckpoint(
            checkpoint.origin,
            checkpoint.size,
            checkpoint.root_hash,
            self.opened.text,
            self._seen_at,
        )
        write_json_atomically(self.options.state_path, seen.to_json())

    def notes(self) -> list[str]:
        if self.opened is None or self.tree is None:
            return []
        checkpoint = self.opened.checkpoint
        cosigners = ", ".join(w.name for w in self.opened.witnesses) or "no witness"
        notes = [
            f"checkpoint {checkpoint.origin} of size {checkpoint.size:,}, signed by the log's "
            f"pinned key and cosigned by {cosigners}",
            self.tree.summary(),
        ]
        if self.seen is None:
            notes.append("no checkpoint seen before: this one is remembered for next time")
        elif self.extends_seen:
            notes.append(
                f"it extends the checkpoint of size {self.seen.size:,} seen before "
                f"({self.options.state_path})"
            )
        return notes


def log_key_from(text: str | None) -> Verifier | None:
    text = text or os.environ.get(LOG_KEY_ENV)
    return Verifier.from_vkey(text) if text else None


def witnesses_from(texts: list[str] | None) -> tuple[Verifier, ...]:
    given = texts or [t for t in os.environ.get(WITNESSES_ENV, "").split(",") if t.strip()]
    return tuple(Verifier.from_vkey(text) for text in given)
