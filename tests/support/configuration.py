"""What the code reads from the environment, found in the code itself, so
that the deployment files (docker-compose.yml, k8s/) can be checked against
it: a variable added to the code and forgotten in a manifest fails a test."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The portal (portal/) is a process too: its settings are checked the same way.
PACKAGES = ("common", "services", "gateway", "portal")
PREFIX = "KSMART_"
# Read only by developers' and operators' tools, never by a running service.
NOT_FOR_SERVICES = {
    "KSMART_ADMIN_PASSWORD": "ksmart-admin create-administrator",
    "KSMART_DEMO_PASSWORD": "ksmart-admin demo-users",
    "KSMART_ROLE_PREFIX": "ksmart-admin setup (tests name their own roles)",
    "KSMART_AUDIT_DATABASE_URL": "ksmart-audit, the auditor's tool",
    "KSMART_AUDIT_GATEWAY": "ksmart-audit, the auditor's tool",
    "KSMART_AUDIT_TOKEN": "ksmart-audit, the auditor's tool",
    "KSMART_SMS_RECEIPT_URL": "the fake SMS provider (dev inbox)",
}


def environment_variables_read() -> dict[str, list[str]]:
    """Every KSMART_* name that appears as a string in the platform's code,
    with the files it appears in."""
    found: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and node.value.startswith(PREFIX)
                    and not node.value.endswith("_")
                    and node.value.isupper()
                    and node.value.replace("_", "").isalnum()
                ):
                    found.setdefault(node.value, []).append(str(path.relative_to(ROOT)))
    # KSMART_<SERVICE>_DATABASE_URL is built from the service's name.
    from ksmart_common.config import SERVICE_DATABASES

    for service in SERVICE_DATABASES:
        found.setdefault(
            f"KSMART_{service.upper()}_DATABASE_URL", ["common/ksmart_common/config.py"]
        )
    return found


def service_environment() -> dict[str, list[str]]:
    """What a running service may read: every name but the tools' own."""
    return {
        name: files
        for name, files in environment_variables_read().items()
        if name not in NOT_FOR_SERVICES
    }
