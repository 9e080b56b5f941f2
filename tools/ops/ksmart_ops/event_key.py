"""The development event-signing key (ksmart_common.event_signatures): made
once under the run folder, readable by its owner only, never in the
repository, and endorsed with the development root by
key_root.anchor_development_keys like the token and certificate keys. A
deployment keeps the key in the applications service's Secret
(KSMART_EVENT_SIGNING_KEY; docs/operations.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ksmart_common.event_signatures import SIGNING_KEY_ENV
from ksmart_ops.run_files import development_pem

EVENT_KEY_FILE = "event-signing-key.pem"


def event_key_environment(
    run_dir: Path, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The development event key, unless the environment gives its own."""
    environ = os.environ if environ is None else environ
    if environ.get(SIGNING_KEY_ENV):
        return {}
    return {SIGNING_KEY_ENV: development_pem(run_dir / EVENT_KEY_FILE)}
