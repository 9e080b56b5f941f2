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
    # Each process's own broker URI, and each signer's actor key, likewise.
    from ksmart_common.actor_assertions import ACTOR_SIGNERS, signing_key_env
    from ksmart_common.config import amqp_uri_variable
    from ksmart_ops.broker_users import PROCESSES

    for process in PROCESSES:
        found.setdefault(amqp_uri_variable(process), ["common/ksmart_common/config.py"])
    for signer in ACTOR_SIGNERS:
        found.setdefault(signing_key_env(signer), ["common/ksmart_common/actor_assertions.py"])
    return found


def actor_verifiers() -> set[str]:
    """The services with an RPC method taking an `actor`: each verifies
    actor assertions, so it needs KSMART_ACTOR_PUBLIC_KEYS."""
    from ksmart_common.services import SERVICES

    found = set()
    for service in SERVICES:
        for path in (ROOT / "services" / service).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.FunctionDef) and _is_rpc(node):
                    if "actor" in [argument.arg for argument in node.args.args]:
                        found.add(service)
    return found


def _is_rpc(function: ast.FunctionDef) -> bool:
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name) and target.id == "rpc":
            return True
    return False


def service_environment() -> dict[str, list[str]]:
    """What a running service may read: every name but the tools' own."""
    return {
        name: files
        for name, files in environment_variables_read().items()
        if name not in NOT_FOR_SERVICES
    }
