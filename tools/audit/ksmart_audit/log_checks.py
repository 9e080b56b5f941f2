"""What the auditor checks of the transparency log (pure: the gateway's
answers come in as arguments or callables).

The per-file hash chains (checks.py) cannot see the newest events deleted,
a whole stream deleted with its positions closed up, an event replaced by
another with a correct chain hash, or a log rewritten consistently. The log
can:

- `open_checkpoint`: the newest checkpoint is signed by the log's pinned key
  and cosigned by at least a quorum of the witnesses the auditor trusts;
- `check_against_seen`: it extends, append-only, the checkpoint this auditor
  saw last time (a consistency proof): no rollback, no fork;
- `TreeChecker`: the tree size and root recomputed from the events
  themselves, in global-position order (leaf = leaf_hash(bytes.fromhex(the
  stored hash))), equal the checkpoint's. A different root is located: the
  first leaf from which the events differ from the tree the log signed,
  found by consistency proofs against the signed root (a prefix is intact
  exactly when such a proof verifies with its recomputed root).
  Events beyond the checkpoint are not failed: the next checkpoint covers
  them. An event the log did not hold when it was seen (at a size this
  auditor saw, or a witness cosigned) though it claims to have been recorded
  well before is reported as backdated.
"""

from __future__ import annotations

import base64
import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ksmart_audit.checks import Findings, Problem
from ksmart_common.checkpoint import Checkpoint
from ksmart_common.merkle import CompactRange, ProofError, leaf_hash, verify_consistency
from ksmart_common.signed_note import COSIGNATURE_V1, Note, NoteError, Verifier, open_note

# Kinds of problem.
CHECKPOINT = "checkpoint refused"
ROLLED_BACK = "log rolled back"
FORKED = "log forked"
TRUNCATED = "log truncated"
ROOT = "root differs"
BACKDATED = "not in the log when seen"

# Every BLOCK leaves the checker keeps the compact range (O(log n) hashes),
# enough to locate a difference with a few proofs and one short re-read.
BLOCK = 256


@dataclass(frozen=True)
class Moment:
    """The log was seen holding `size` leaves at `time` (seconds since the
    epoch): by this auditor, or by a witness that cosigned it then."""

    size: int
    time: float
    by: str


@dataclass(frozen=True)
class SeenCheckpoint:
    """The checkpoint an auditor saw last (its state file)."""

    origin: str
    size: int
    root_hash: bytes
    note: str
    seen_at: float

    def to_json(self) -> dict:
        return {
            "origin": self.origin,
            "size": self.size,
            "root": base64.b64encode(self.root_hash).decode(),
            "note": self.note,
            "seen_at": self.seen_at,
        }

    @classmethod
    def from_json(cls, document: dict) -> SeenCheckpoint:
        return cls(
            document["origin"],
            document["size"],
            base64.b64decode(document["root"]),
            document["note"],
            document["seen_at"],
        )


@dataclass(frozen=True)
class OpenedCheckpoint:
    checkpoint: Checkpoint
    note: Note
    text: str
    witnesses: tuple[Verifier, ...]  # those whose cosignature verified

    def moments(self) -> list[Moment]:
        """When each trusted witness says the log had this size."""
        found = []
        for witness in self.witnesses:
            stamp = self.note.timestamp_of(witness)
            if stamp is not None:
                found.append(Moment(self.checkpoint.size, float(stamp), f"witness {witness.name}"))
        return found


class CheckpointRefused(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def open_checkpoint(
    text: str, log_key: Verifier, witnesses: Sequence[Verifier], quorum: int
) -> OpenedCheckpoint:
    """The checkpoint if the log signed it and `quorum` of the witnesses
    cosigned it; CheckpointRefused saying why not."""

    def refused(message: str, expected: object = None, found: object = None) -> CheckpointRefused:
        return CheckpointRefused(Problem(CHECKPOINT, message, expected=expected, found=found))

    try:
        note, verified = open_note(text, [log_key, *witnesses])
        checkpoint = Checkpoint.from_text(note.text)
    except NoteError as error:
        raise refused(f"the newest checkpoint does not verify: {error}") from error
    if log_key not in verified:
        raise refused(
            "the newest checkpoint is not signed by the log's pinned key",
            expected=log_key.vkey(),
            found=", ".join(line.name for line in note.signatures),
        )
    if checkpoint.origin != log_key.name:
        raise refused(
            "the checkpoint is of another log", expected=log_key.name, found=checkpoint.origin
        )
    cosigners = tuple(v for v in verified if v.signature_type == COSIGNATURE_V1)
    if len(cosigners) < quorum:
        missing = [w.name for w in witnesses if w not in cosigners]
        raise refused(
            f"the checkpoint of size {checkpoint.size} is cosigned by {len(cosigners)} of the "
            f"trusted witnesses, fewer than the quorum of {quorum}",
            expected=f"{quorum} cosignatures",
            found=f"{len(cosigners)}; none from {', '.join(missing)}",
        )
    return OpenedCheckpoint(checkpoint, note, text, cosigners)


def check_against_seen(
    seen: SeenCheckpoint | None,
    checkpoint: Checkpoint,
    consistency: Callable[[int, int], list[bytes]],
) -> Problem | None:
    """The problem if the newest checkpoint does not extend the one seen
    last time (None if it does, or if nothing was seen before)."""
    if seen is None or seen.size == 0:
        return None
    seen_root = base64.b64encode(seen.root_hash).decode()
    if checkpoint.size < seen.size:
        return Problem(
            ROLLED_BACK,
            f"the newest checkpoint is of {checkpoint.size:,} leaves, but this auditor saw "
            f"one of {seen.size:,} before: the log was rolled back (events deleted)",
            expected=f"a size of at least {seen.size}",
            found=checkpoint.size,
        )
    if checkpoint.size == seen.size:
        if checkpoint.root_hash == seen.root_hash:
            return None
        return Problem(
            FORKED,
            f"the log signed two different roots for size {seen.size:,}: it was rewritten",
            expected=seen_root,
            found=base64.b64encode(checkpoint.root_hash).decode(),
        )
    try:
        proof = consistency(seen.size, checkpoint.size)
        verify_consistency(seen.size, checkpoint.size, proof, seen.root_hash, checkpoint.root_hash)
    except ProofError as error:
        return Problem(
            FORKED,
            f"the checkpoint of {checkpoint.size:,} leaves does not extend the one of "
            f"{seen.size:,} seen last time ({error}): the log was rewritten",
            expected=f"root {seen_root} at size {seen.size} as a prefix",
            found=base64.b64encode(checkpoint.root_hash).decode(),
        )
    return None


def leaf_hash_of(stored_hash: object) -> bytes:
    """The leaf of an event: leaf_hash(the 32 bytes of its stored hash)."""
    try:
        data = bytes.fromhex(stored_hash)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        data = str(stored_hash).encode()  # an altered row: the chain check names it
    return leaf_hash(data)


@dataclass(frozen=True)
class Leaf:
    """One event as a leaf: its stored hash and where it is."""

    hash: str
    stream_id: str | None = None
    version: int | None = None
    position: int | None = None
    recorded_at: datetime | None = None

    def leaf_hash(self) -> bytes:
        return leaf_hash_of(self.hash)

    def where(self) -> dict:
        return {"stream_id": self.stream_id, "version": self.version, "position": self.position}


@dataclass
class _Snapshot:
    size: int
    peaks: tuple[bytes, ...]
    last_position: int | None


@dataclass
class TreeChecker:
    """Follows the events in global-position order as leaves; see the module."""

    checkpoint: Checkpoint
    moments: Sequence[Moment] = ()
    merge_delay: float = 300.0
    findings: Findings = field(default_factory=Findings)

    def __post_init__(self) -> None:
        self.edge = CompactRange()
        self.beyond = 0
        self.root_matches: bool | None = None
        self.last_position: int | None = None
        self._snapshots = [_Snapshot(0, (), None)]
        self._moments = sorted(self.moments, key=lambda moment: moment.size)

    def add(self, leaf: Leaf) -> None:
        index = self.edge.size + self.beyond
        self._check_moments(index, leaf)
        size = self.checkpoint.size
        if self.edge.size < size:
            self.edge.append(leaf.leaf_hash())
            self.last_position = leaf.position
            if self.edge.size % BLOCK == 0:
                self._snapshots.append(
                    _Snapshot(self.edge.size, tuple(self.edge.peaks), leaf.position)
                )
            if self.edge.size == size:
                self.root_matches = self.edge.root() == self.checkpoint.root_hash
        else:
            self.beyond += 1

    def _check_moments(self, index: int, leaf: Leaf) -> None:
        if leaf.recorded_at is None or not self._moments:
            return
        recorded = leaf.recorded_at.timestamp()
        # The moments at which the log did not yet hold this leaf.
        earlier = self._moments[: bisect.bisect_right([m.size for m in self._moments], index)]
        for moment in earlier:
            if recorded < moment.time - self.merge_delay:
                self.findings.add(
                    Problem(
                        BACKDATED,
                        f"leaf {index:,} says it was recorded at {leaf.recorded_at.isoformat()}, "
                        f"but the log held only {moment.size:,} leaves when {moment.by} saw it "
                        f"at {datetime.fromtimestamp(moment.time).astimezone().isoformat()}: "
                        "added later and dated back (forged)",
                        expected=f"recorded after {moment.time - self.merge_delay:.0f}",
                        found=f"recorded at {recorded:.0f}",
                        **leaf.where(),
                    )
                )
                return

    def finish(
        self,
        consistency: Callable[[int, int], list[bytes]] | None = None,
        reread: Callable[[int | None, int], list[Leaf]] | None = None,
    ) -> Findings:
        """Every problem found. With `consistency` (a proof from the log) and
        `reread` (the `count` leaves after a position), a different root is
        located to its first differing leaf."""
        size = self.checkpoint.size
        if self.edge.size < size:
            self.findings.add(
                Problem(
                    TRUNCATED,
                    f"the log holds {self.edge.size:,} events, but its checkpoint says "
                    f"{size:,}: the events at leaf indices {self.edge.size:,} to {size - 1:,} "
                    "are missing (the newest deleted)",
                    position=self.last_position,
                    expected=f"{size} events",
                    found=f"{self.edge.size} events",
                )
            )
            return self.findings
        if self.root_matches is False:
            self.findings.add(self._root_problem(consistency, reread))
        return self.findings

    def _root_problem(
        self,
        consistency: Callable[[int, int], list[bytes]] | None,
        reread: Callable[[int | None, int], list[Leaf]] | None,
    ) -> Problem:
        size = self.checkpoint.size
        expected = base64.b64encode(self.checkpoint.root_hash).decode()
        recomputed = base64.b64encode(self.edge.root()).decode()
        general = Problem(
            ROOT,
            f"the root recomputed from the first {size:,} events differs from the checkpoint's: "
            "checkpointed events were altered, inserted, deleted or rewritten",
            expected=expected,
            found=recomputed,
        )
        if consistency is None or reread is None:
            return general
        try:
            first_bad, leaf = self._locate(consistency, reread)
        except (ProofError, LookupError):
            return general
        return Problem(
            ROOT,
            f"leaf {first_bad:,} is the first event that differs from the log the checkpoint "
            f"of size {size:,} signed (the events before it match it): from here on, events "
            "were altered, inserted, deleted or rewritten",
            expected=f"root {expected}",
            found=f"root {recomputed}, recomputed from the events",
            **(leaf.where() if leaf else {}),
        )

    def _intact(self, size: int, root: bytes, consistency: Callable[[int, int], list[bytes]]):
        try:
            verify_consistency(
                size,
                self.checkpoint.size,
                consistency(size, self.checkpoint.size),
                root,
                self.checkpoint.root_hash,
            )
        except ProofError:
            return False
        return True

    def _locate(
        self,
        consistency: Callable[[int, int], list[bytes]],
        reread: Callable[[int | None, int], list[Leaf]],
    ) -> tuple[int, Leaf | None]:
        # The last snapshot whose prefix is intact (size 0 always is).
        low, high = 0, len(self._snapshots) - 1
        while low < high:
            middle = (low + high + 1) // 2
            snapshot = self._snapshots[middle]
            root = CompactRange(snapshot.size, snapshot.peaks).root()
            if self._intact(snapshot.size, root, consistency):
                low = middle
            else:
                high = middle - 1
        start = self._snapshots[low]
        count = min(BLOCK, self.checkpoint.size - start.size)
        leaves = reread(start.last_position, count)
        edge = CompactRange(start.size, start.peaks)
        roots = []
        for leaf in leaves:
            edge.append(leaf.leaf_hash())
            roots.append(edge.root())
        # The first size in the block whose prefix is not intact.
        low, high = 0, len(roots) - 1
        while low < high:
            middle = (low + high) // 2
            if self._intact(start.size + middle + 1, roots[middle], consistency):
                low = middle + 1
            else:
                high = middle
        if not roots:
            raise LookupError("no events to locate the difference in")
        return start.size + low, leaves[low]

    def summary(self) -> str:
        size = self.checkpoint.size
        text = f"the tree of {min(self.edge.size, size):,} leaves recomputed"
        if self.root_matches:
            text += f" has the root of the checkpoint of size {size:,}"
        if self.beyond:
            text += (
                f"; {self.beyond:,} newer event{'s' if self.beyond != 1 else ''} beyond it, "
                "for the next checkpoint"
            )
        return text
