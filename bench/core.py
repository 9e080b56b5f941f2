"""What every benchmark section returns, and the settings and progress
reporting they share. `python -m bench` runs the sections and writes the
report (bench/report.py)."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Settings:
    quick: bool = False

    def pick(self, full, quick):
        """The full run's value, or the quick smoke run's."""
        return quick if self.quick else full


@dataclass(frozen=True)
class Ratio:
    """Ours against the reference measured in the same run, and the target."""

    name: str
    ours: float
    reference: float
    target: float
    unit: str
    higher_is_better: bool = True

    @property
    def value(self) -> float:
        if self.higher_is_better:
            return self.ours / self.reference if self.reference else 0.0
        return self.reference / self.ours if self.ours else 0.0

    @property
    def met(self) -> bool:
        return self.value >= self.target

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "value": round(self.value, 3), "met": self.met}


@dataclass
class Section:
    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    ratios: list[Ratio] = field(default_factory=list)
    # For the chart: {"throughput": {label: [[x, y], ...]}, "latency": {...}}
    series: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["ratios"] = [ratio.to_dict() for ratio in self.ratios]
        return document


class Progress:
    """One line per step, with the time since the run began."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)
