"""What an auditor checks, one event at a time, in constant memory.

`ChainChecker` takes events in the order they were read and remembers, per
stream, only the last version and hash it saw (and, for the whole log, the
last global position). For every event it checks:

- its hash, recomputed from the exact text stored for it, the `canonical`
  text its export carries (ksmart_common.envelope.StoredEvent): a mismatch
  means the event was altered, or renumbered (its content hashes right under
  a neighbouring version: reordered);
- that text: the canonical encoding of the envelope it parses to, byte for
  byte (not a key twice, another escape, spacing or number spelling), and
  the same as the envelope fields the export shows beside it;
- its version: the one after the stream's last (a jump means events are
  missing, a step back means events were reordered or repeated);
- its prev_hash: the stored hash of the stream's event before it;
- its global position: increasing always, and in whole-log reads without a
  gap (positions are gap-free by construction, see eventstore.py).

`compare_views` lists every field in which two views of a file differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from marshmallow import ValidationError

from ksmart_common.canonical import GENESIS_HASH
from ksmart_common.envelope import (
    CANONICAL_KEY,
    Envelope,
    StoredEvent,
    compute_hash,
    read_document,
)

# Kinds of problem.
ALTERED = "altered"
NOT_CANONICAL = "not canonical"
NOT_AS_HASHED = "shown otherwise than hashed"
REORDERED = "reordered"
MISSING = "missing"
BROKEN_LINK = "broken link"
POSITION_GAP = "position gap"
POSITION_ORDER = "position order"
FOREIGN = "foreign event"
INVALID = "invalid event"
PROJECTION = "projection refused"
DIFFERENT = "differs"
UNAVAILABLE = "not shown"

# The report keeps the first problems in full and counts the rest, so that a
# badly damaged log cannot exhaust memory either.
MAX_KEPT = 1_000


@dataclass(frozen=True)
class Problem:
    kind: str
    message: str
    stream_id: str | None = None
    version: int | None = None
    position: int | None = None
    expected: Any = None
    found: Any = None

    @property
    def where(self) -> str:
        parts = []
        if self.stream_id:
            parts.append(self.stream_id)
        if self.version is not None:
            parts.append(f"v{self.version}")
        if self.position is not None:
            parts.append(
                f"(global position {self.position})"
                if parts
                else f"global position {self.position}"
            )
        return " ".join(parts) or "the log"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class Findings:
    """Problems found: the first `keep` in full, and how many in all."""

    def __init__(self, keep: int = MAX_KEPT) -> None:
        self.keep = keep
        self.kept: list[Problem] = []
        self.count = 0

    def add(self, problem: Problem) -> None:
        self.count += 1
        if len(self.kept) < self.keep:
            self.kept.append(problem)

    def merge(self, other: Findings) -> None:
        room = max(0, self.keep - len(self.kept))
        self.kept.extend(other.kept[:room])
        self.count += other.count

    def __bool__(self) -> bool:
        return self.count > 0

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.kept)

    def __len__(self) -> int:
        return self.count


def _where(envelope: Envelope) -> dict[str, Any]:
    return {
        "stream_id": envelope.stream_id,
        "version": envelope.stream_version,
        "position": envelope.global_position,
    }


class ChainChecker:
    """Checks events in reading order; see the module's docstring.

    Exactly one way of reading:
    - stream_id: one stream's events in version order (a file's export);
    - after: the whole log after that position (0: from the start). Streams
      first met in a range that starts after 0 may continue from before it;
    - auto (neither): an export read back, kind unknown. Positions are
      checked from its first event; if it turns out to hold a single
      stream, it was a file's export, and the gaps other files' events
      leave between its positions are not problems.
    """

    def __init__(self, *, stream_id: str | None = None, after: int | None = None) -> None:
        if stream_id is not None and after is not None:
            raise ValueError("a stream or the log after a position, not both")
        self.stream_id = stream_id
        self.after = after
        self.auto = stream_id is None and after is None
        self.heads: dict[str, tuple[int, str]] = {}
        self.findings = Findings()
        self._gaps = Findings()  # auto: held until the end says what was read
        self.last_position: int | None = after
        self.first_position: int | None = None
        self.events = 0
        self.continued = 0  # streams that began before the range read

    @property
    def whole_log(self) -> bool:
        return self.after is not None or (self.auto and len(self.heads) > 1)

    def add(self, problem: Problem) -> None:
        self.findings.add(problem)

    def invalid(self, message: str, document: Any = None) -> None:
        """An entry that is not an envelope at all (it cannot be chained)."""
        where = {}
        if isinstance(document, Mapping):
            for key, field in (
                ("stream_id", "stream_id"),
                ("version", "stream_version"),
                ("position", "global_position"),
            ):
                value = document.get(field)
                if isinstance(value, str if key == "stream_id" else int):
                    where[key] = value
        self.add(Problem(INVALID, message, **where))

    def check_document(self, document: Any, where: str = "an event") -> StoredEvent | None:
        """An export's event read and checked: the event as its `canonical`
        text says, or None (and the reason added) when it is none."""
        try:
            event, differing = read_document(document)
        except ValidationError as error:
            self.invalid(f"{where} is not a valid envelope: {error.messages}", document)
            return None
        except (TypeError, ValueError, AttributeError) as error:
            self.invalid(f"{where} is not a valid envelope: {error}", document)
            return None
        if differing:
            self.add(
                Problem(
                    NOT_AS_HASHED,
                    f"its {', '.join(differing)} as shown differ from its `{CANONICAL_KEY}` "
                    "text, the text its hash covers (the event as hashed is the one checked)",
                    **_where(event.envelope),
                )
            )
        self.check(event)
        return event

    def check(self, event: StoredEvent) -> None:
        envelope = event.envelope
        self.events += 1
        self._check_position(envelope)
        if self.stream_id is not None and envelope.stream_id != self.stream_id:
            self.add(
                Problem(
                    FOREIGN,
                    f"an event of another stream among {self.stream_id}'s",
                    expected=self.stream_id,
                    found=envelope.stream_id,
                    **_where(envelope),
                )
            )
            return
        self._check_stream(event)

    def _check_position(self, envelope: Envelope) -> None:
        position = envelope.global_position
        if self.first_position is None:
            self.first_position = position
        last = self.last_position
        if last is None:
            self.last_position = position
            return
        if position <= last:
            self.add(
                Problem(
                    POSITION_ORDER,
                    f"global position {position} comes after {last}: positions must "
                    "increase (events reordered or repeated)",
                    expected=f"a position after {last}",
                    found=position,
                    **_where(envelope),
                )
            )
            return
        if position != last + 1 and self.stream_id is None:
            missing = (
                f"position {last + 1} is"
                if position == last + 2
                else f"positions {last + 1} to {position - 1} are"
            )
            gap = Problem(
                POSITION_GAP,
                f"the log jumps from position {last} to {position}: {missing} missing "
                f"(events deleted); the next event is {envelope.stream_id} "
                f"v{envelope.stream_version}",
                position=last + 1,
                expected=f"position {last + 1}",
                found=f"position {position}, {envelope.stream_id} v{envelope.stream_version}",
            )
            (self._gaps if self.auto else self.findings).add(gap)
        self.last_position = position

    def _may_continue(self) -> bool:
        """May a stream first met here have begun before the range read?"""
        if self.after is not None:
            return self.after > 0
        return self.auto and (self.first_position or 1) > 1

    def _check_stream(self, event: StoredEvent) -> None:
        envelope = event.envelope
        version = envelope.stream_version
        head = self.heads.get(envelope.stream_id)
        if head is None:
            expected_version = 1
            if version != 1 and self._may_continue():
                self.continued += 1
            elif version != 1:
                self.add(
                    Problem(
                        MISSING,
                        f"the stream starts at version {version}: "
                        f"{_versions(1, version - 1)} missing (deleted or reordered)",
                        expected="version 1",
                        found=f"version {version}",
                        **_where(envelope),
                    )
                )
            elif envelope.prev_hash != GENESIS_HASH:
                self.add(
                    Problem(
                        BROKEN_LINK,
                        "the stream's first event does not link to the genesis hash",
                        expected=GENESIS_HASH,
                        found=envelope.prev_hash,
                        **_where(envelope),
                    )
                )
            last_version = 0
        else:
            last_version, last_hash = head
            expected_version = last_version + 1
            if version > expected_version:
                self.add(
                    Problem(
                        MISSING,
                        f"version {version} follows version {last_version}: "
                        f"{_versions(expected_version, version - 1)} missing "
                        "(deleted or reordered)",
                        expected=f"version {expected_version}",
                        found=f"version {version}",
                        **_where(envelope),
                    )
                )
            elif version < expected_version:
                self.add(
                    Problem(
                        REORDERED,
                        f"version {version} comes after version {last_version} "
                        "(events reordered or repeated)",
                        expected=f"version {expected_version}",
                        found=f"version {version}",
                        **_where(envelope),
                    )
                )
            if envelope.prev_hash != last_hash:
                self.add(
                    Problem(
                        BROKEN_LINK,
                        f"prev_hash does not link to the hash of v{last_version}, "
                        "the event read before it",
                        expected=last_hash,
                        found=envelope.prev_hash,
                        **_where(envelope),
                    )
                )
        self._check_hash(event, expected_version)
        # The stored hash, right or wrong, is what the next event must link
        # to: one altered event is one problem, not a broken rest of the chain.
        self.heads[envelope.stream_id] = (max(version, last_version), envelope.hash)

    def _check_hash(self, event: StoredEvent, expected_version: int) -> None:
        envelope = event.envelope
        reason = event.not_canonical()
        if reason is not None:
            self.add(
                Problem(
                    NOT_CANONICAL,
                    f"its stored text is not canonical JSON: {reason} (the text was "
                    "rewritten, or sealed as no verifier can reproduce it)",
                    **_where(envelope),
                )
            )
        recomputed = event.recomputed_hash()
        if recomputed == envelope.hash:
            return
        renumbered = _renumbered_from(envelope, expected_version)
        if renumbered is not None:
            kind = REORDERED
            message = (
                f"hash does not match the event's content as stored, but matches it as "
                f"version {renumbered}: the event was renumbered from v{renumbered} to "
                f"v{envelope.stream_version} (events reordered)"
            )
        else:
            kind = ALTERED
            message = "hash does not match the event's stored text (the event was altered)"
        self.add(
            Problem(
                kind,
                message,
                expected=f"{envelope.hash} (the hash sealed with the event)",
                found=f"{recomputed} (the hash of its stored text now)",
                **_where(envelope),
            )
        )

    def finish(self) -> Findings:
        """Every problem found; call once, after the last event."""
        if self.auto and self.whole_log:
            self.findings.merge(self._gaps)
        self._gaps = Findings()
        return self.findings

    def summary(self) -> str:
        streams = len(self.heads)
        text = f"{self.events:,} event{'s' if self.events != 1 else ''}"
        text += f" in {streams:,} stream{'s' if streams != 1 else ''}"
        if self.first_position is not None:
            text += f", global positions {self.first_position:,} to {self.last_position:,}"
        if self.continued:
            text += (
                f"; {self.continued:,} stream(s) began before the range read, "
                "so their links into it were not checked"
            )
        return text


def _versions(first: int, last: int) -> str:
    return f"version {first} is" if first == last else f"versions {first} to {last} are"


def _renumbered_from(envelope: Envelope, expected_version: int) -> int | None:
    """The version under which the event's content does hash to its stored
    hash, if a neighbouring one does: the event was moved, not rewritten.
    (Encoded again: it only names what is already found wrong.)"""
    for candidate in (expected_version, envelope.stream_version - 1, envelope.stream_version + 1):
        if candidate < 1 or candidate == envelope.stream_version:
            continue
        if compute_hash(replace(envelope, stream_version=candidate)) == envelope.hash:
            return candidate
    return None


# -- comparing views ----------------------------------------------------------


class _Absent:
    """A key or item one side does not have."""

    def __repr__(self) -> str:
        return "(absent)"

    __str__ = __repr__


ABSENT = _Absent()


def _plain(value: Any) -> Any:
    """JSON values only (tuples become lists), as either side is shown."""
    return json.loads(json.dumps(value, ensure_ascii=False))


# What the platform shows beside a file that is no part of its state, so no
# replay of its events has it: where its events stand in the public log
# (each proof is checked by `ksmart-audit prove`, not by a replay).
BESIDE_THE_FILE = frozenset({"transparency"})


def compare_views(
    replayed: Mapping[str, Any], shown: Mapping[str, Any], stream_id: str | None = None
) -> tuple[list[Problem], list[str]]:
    """Every field in which the platform's view of a file (`shown`) differs
    from the replay's (`replayed`), and the replay's top-level fields the
    platform does not show at all (not compared)."""
    replayed = _plain(replayed)
    shown = {key: value for key, value in _plain(shown).items() if key not in BESIDE_THE_FILE}
    version = replayed.get("version") if isinstance(replayed.get("version"), int) else None
    problems: list[Problem] = []
    not_shown = sorted(key for key in replayed if key not in shown)
    for key in sorted(shown):
        if key not in replayed:
            problems.append(
                Problem(
                    DIFFERENT,
                    f"{key}: the platform shows a field the replay does not have",
                    stream_id=stream_id,
                    version=version,
                    expected=ABSENT,
                    found=shown[key],
                )
            )
            continue
        for path, expected, found in _differences(key, replayed[key], shown[key]):
            problems.append(
                Problem(
                    DIFFERENT,
                    f"{path}: the platform shows other than the replay of the events",
                    stream_id=stream_id,
                    version=version,
                    expected=expected,
                    found=found,
                )
            )
    return problems, not_shown


def _differences(path: str, expected: Any, found: Any) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(expected, dict) and isinstance(found, dict):
        for key in sorted(set(expected) | set(found)):
            yield from _differences(
                f"{path}.{key}", expected.get(key, ABSENT), found.get(key, ABSENT)
            )
    elif isinstance(expected, list) and isinstance(found, list):
        for index in range(max(len(expected), len(found))):
            yield from _differences(
                f"{path}[{index}]",
                expected[index] if index < len(expected) else ABSENT,
                found[index] if index < len(found) else ABSENT,
            )
    elif expected != found or type(expected) is not type(found):
        yield path, expected, found
