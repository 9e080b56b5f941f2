"""The auditor's tool installed alone, as an auditor would on their own
machine: a fresh virtual environment holding ksmart-common (base install)
and ksmart-audit, and exactly the third-party distributions those two
declare, transitively; nothing of the platform (no nameko, SQLAlchemy,
psycopg2 or broker client).

The two K-Smart distributions are built as wheels from their folders and
installed with pip, without an index. The third-party ones are not fetched
from a registry (a test must not need the network): each is copied, files
and metadata, from the test run's own environment, where the project's
pins put it. That is what pip would unpack from the same wheel.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = (ROOT / "common", ROOT / "tools" / "audit")


def _declared(path: Path) -> list[Requirement]:
    import tomllib

    project = tomllib.loads((path / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project.get("dependencies", [])]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_closure() -> set[str]:
    """Every third-party distribution the two declare, and what those need
    (environment markers as this interpreter reads them)."""
    ours = {"ksmart-common", "ksmart-audit"}
    wanted = [r for path in DISTRIBUTIONS for r in _declared(path)]
    found: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = _canonical(requirement.name)
        if name in ours or name in found:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        found.add(name)
        for text in metadata.requires(name) or []:
            needed = Requirement(text)
            if needed.marker is None or needed.marker.evaluate({"extra": ""}):
                wanted.append(needed)
    return found


def create(target: Path) -> Path:
    """A fresh environment in `target` with the auditor's tool; its bin/."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
    python = target / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    here = Path(sysconfig.get_paths()["purelib"])
    for name in sorted(third_party_closure()):
        distribution = metadata.distribution(name)
        for file in distribution.files or []:
            source = Path(distribution.locate_file(file))
            if source.is_file() and here in source.parents:
                destination = site_packages / source.relative_to(here)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)
    # Built from copies, so that the build leaves nothing in the source tree.
    sources = []
    for path in DISTRIBUTIONS:
        copy = target / "src" / path.name
        shutil.copytree(
            path, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
        )
        sources.append(str(copy))
    wheels = target / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels), *sources],
        check=True,
    )
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-index", "--no-deps"]
        + [str(wheel) for wheel in sorted(wheels.glob("*.whl"))],
        check=True,
    )
    # Every declared requirement is met there, and nothing else is missing.
    subprocess.run([*pip, "--python", str(python), "check"], check=True)
    return target / "bin"
