"""Development secrets kept under the run folder: each made once, readable
by its owner only, never in the repository, and read back on every start
so that a restarted platform keeps its keys. A deployment keeps them in
its Secrets instead (k8s/, docker-compose.yml; docs/operations.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ksmart_common import ed25519


def made_once(secret_file: Path, make: Callable[[], str]) -> str:
    """The text of `secret_file`, written by `make` (mode 0600) if missing."""
    if not secret_file.exists():
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        secret_file.touch(mode=0o600)
        secret_file.write_text(make())
    return secret_file.read_text()


def development_pem(key_file: Path) -> str:
    """An Ed25519 key's PEM, made in `key_file` (mode 0600) if missing."""
    return made_once(key_file, _new_pem)


def development_key(key_file: Path) -> Ed25519PrivateKey:
    """The Ed25519 key of `key_file`, made there (mode 0600) if missing."""
    return ed25519.private_key_from_pem(development_pem(key_file))


def _new_pem() -> str:
    return ed25519.private_key_to_pem(ed25519.generate_private_key())
