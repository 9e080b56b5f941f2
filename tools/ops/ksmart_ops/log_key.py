"""The transparency log's development key: made once under the run folder,
readable by its owner only, never in the repository, with an origin of the
run's own so that two development logs never pass for one. A deployment
keeps the key in the checkpointer's Secret and names its log in its
configuration (k8s/, docker-compose.yml; docs/operations.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ksmart_checkpointer.settings import ORIGIN_ENV, SIGNING_KEY_ENV
from ksmart_common import ed25519

LOG_KEY_FILE = "log-signing-key.pem"


def log_key_environment(run_dir: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The log's key and origin, unless the environment names its own."""
    environ = os.environ if environ is None else environ
    found = {}
    if not environ.get(SIGNING_KEY_ENV):
        found[SIGNING_KEY_ENV] = development_pem(run_dir / LOG_KEY_FILE)
    if not environ.get(ORIGIN_ENV):
        found[ORIGIN_ENV] = f"ksmart.local/{run_dir.resolve().name}/events"
    return found


def development_pem(key_file: Path) -> str:
    """An Ed25519 key's PEM, made in `key_file` (mode 0600) if missing."""
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(ed25519.private_key_to_pem(ed25519.generate_private_key()))
    return key_file.read_text()
