"""The house's boundaries hold: import-linter's contracts ([tool.importlinter]
in pyproject.toml) over every package the project installs.

- the domain does no I/O (no framework, driver, environment, file or
  network, directly or through what it imports);
- the kernel imports no service, gateway or tool;
- no service or the gateway imports another's package;
- only the operators' tools import several services, and nothing imports them;
- the auditor's tool needs only the kernel's pure parts and an HTTP client.
"""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _contracts() -> list[dict]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return pyproject["tool"]["importlinter"]["contracts"]


def test_every_contract_is_kept():
    finished = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    kept = f"Contracts: {len(_contracts())} kept, 0 broken."
    assert kept in finished.stdout, finished.stdout


def test_the_contracts_cover_every_installed_package():
    """A package the contracts do not name is a package nobody checks."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    roots = set(pyproject["tool"]["importlinter"]["root_packages"])
    folders = [
        *pyproject["tool"]["setuptools"]["packages"]["find"]["where"],
        "common",
        "tools/audit",
    ]
    installed = {
        package.parent.name
        for folder in folders
        for package in (ROOT / folder).glob("ksmart_*/__init__.py")
    }
    assert installed == roots
    independent = next(c for c in _contracts() if c["id"] == "services-apart")["modules"]
    services = {name for name in roots if name not in {"ksmart_common", "ksmart_ops"}}
    assert set(independent) == services
