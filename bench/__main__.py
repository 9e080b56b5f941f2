"""`make bench`: every benchmark, each beside its reference, in one run.

    python -m bench [--quick] [--only append,relay,e2e,replay,portal,transparency]

Writes bench/results/latest.{json,md,png} (quick: quick.*) and, after a full
run, the summary in README.md.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.core import Progress, Settings

SECTIONS = ("append", "relay", "e2e", "replay", "portal", "transparency")
ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run in under 2 minutes")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to run")
    args = parser.parse_args(argv)
    names = [name for name in args.only.split(",") if name]
    unknown = set(names) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    settings, progress = Settings(quick=args.quick), Progress()
    started = time.monotonic()
    run = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "machine": report.machine(),
    }
    sections = []
    for name in names:
        progress(f"{name}: starting")
        sections.append(importlib.import_module(f"bench.{name}").run(settings, progress))
    run["duration_s"] = time.monotonic() - started
    stem = "quick" if args.quick else "latest"
    paths = report.write(run, sections, ROOT / "bench" / "results", stem)
    if not args.quick and names == list(SECTIONS):
        report.update_readme(
            ROOT / "README.md",
            run,
            sections,
            {kind: path.relative_to(ROOT) for kind, path in paths.items()},
        )
    print(report.markdown(run, sections))
    progress(f"done: {', '.join(str(path.relative_to(ROOT)) for path in paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
