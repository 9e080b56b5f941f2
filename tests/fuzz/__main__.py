"""`make fuzz`: many more cases than the quick run of `make test`, on a
platform of its own; prints a summary and every distinct finding, and exits
non-zero if there is one.

    python -m tests.fuzz [--examples 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.fuzz.runner import PUBLIC, REFUSED, fuzz
from tests.support.platform import running_platform


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument(
        "--examples", type=int, default=100, help="cases per operation, caller and mode"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="0: derandomized (the same cases each run)"
    )
    arguments = parser.parse_args()

    def examples(mode: str, standing: str, caller: str) -> int:
        # Refused callers never reach the input, and a public operation reads no token.
        if standing == REFUSED or (standing == PUBLIC and caller != "anonymous"):
            return max(1, arguments.examples // 20)
        return arguments.examples

    with tempfile.TemporaryDirectory(prefix="ksmart-fuzz-") as run_dir:
        with running_platform(Path(run_dir)) as platform:
            report = fuzz(platform, examples, seed=arguments.seed)
    print(report.summary())
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
