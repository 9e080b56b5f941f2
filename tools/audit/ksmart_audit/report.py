"""What the auditor reads on stderr: progress while events stream, and the
report at the end, one numbered entry per problem: where (stream, version,
global position), what is wrong, what was expected and what was found."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

from ksmart_audit.checks import Findings, Problem


class Progress:
    """At most one line a second: events done, their rate and, for ranges of
    the log, the position reached (and of how many, when the end is known)."""

    def __init__(
        self,
        label: str,
        *,
        enabled: bool = True,
        out: TextIO | None = None,
        interval: float = 1.0,
        after: int | None = None,
        until: int | None = None,
    ) -> None:
        self.label = label
        self.enabled = enabled
        self.out = out or sys.stderr
        self.interval = interval
        self.after = after
        self.until = until
        self.events = 0
        self.position: int | None = None
        self.started = time.monotonic()
        self._last_shown = self.started

    def update(self, events: int, position: int | None = None) -> None:
        self.events = events
        if position is not None:
            self.position = position
        now = time.monotonic()
        if self.enabled and now - self._last_shown >= self.interval:
            self._last_shown = now
            self._show()

    def finish(self) -> None:
        if self.enabled:
            self._show(final=True)

    def line(self, final: bool = False) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        text = f"{self.label}: {self.events:,} events"
        text += f" in {elapsed:.1f} s" if final else ""
        text += f", {self.events / elapsed:,.0f} events/s"
        if self.after is not None and self.position is not None:
            text += f", position {self.position:,}"
            if self.until is not None and self.until > self.after:
                done = (self.position - self.after) / (self.until - self.after)
                text += f" of {self.until:,} ({min(done, 1.0):.0%})"
        return text + (" - done" if final else "")

    def _show(self, final: bool = False) -> None:
        print(self.line(final), file=self.out, flush=True)


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 500 else text[:500] + " ..."


def format_problem(number: int, problem: Problem) -> str:
    lines = [f"  {number}. {problem.where}  [{problem.kind}]", f"     {problem.message}"]
    if problem.expected is not None or problem.found is not None:
        lines.append(f"     expected: {_value(problem.expected)}")
        lines.append(f"     found:    {_value(problem.found)}")
    return "\n".join(lines)


def print_report(
    title: str,
    summary: str,
    findings: Findings | Iterable[Problem],
    *,
    notes: Iterable[str] = (),
    out: TextIO | None = None,
) -> None:
    """The human report; `findings` empty means everything verified."""
    out = out or sys.stderr
    if not isinstance(findings, Findings):
        collected = Findings()
        for problem in findings:
            collected.add(problem)
        findings = collected
    print(f"\n{title}", file=out)
    print(f"  {summary}", file=out)
    for note in notes:
        print(f"  note: {note}", file=out)
    if not findings:
        print("  VERIFIED: no difference found.", file=out, flush=True)
        return
    count = findings.count
    print(f"  {count:,} DIFFERENCE{'S' if count != 1 else ''} FOUND:", file=out)
    for number, problem in enumerate(findings, start=1):
        print(format_problem(number, problem), file=out)
    if count > len(findings.kept):
        print(f"  ... and {count - len(findings.kept):,} more not listed", file=out)
    out.flush()
