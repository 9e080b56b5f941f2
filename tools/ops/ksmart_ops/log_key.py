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
from ksmart_ops.run_files import development_pem

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
