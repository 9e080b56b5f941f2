"""Development keys for signing actors (ksmart_common.actor_assertions):
one Ed25519 key per signing process, made once under the run folder,
readable by its owner only, never in the repository; and the pinned list
of their public keys that every service verifies with. A deployment keeps
the private keys in each signer's Secret and the public list in its
configuration (k8s/, docker-compose.yml)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from ksmart_common import ed25519
from ksmart_common.actor_assertions import (
    ACTOR_SIGNERS,
    PUBLIC_KEYS_ENV,
    public_key_text,
    signing_key_env,
)
from ksmart_ops.run_files import development_key


def actor_key_environment(
    run_dir: Path, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Each signer's private key and the public keys, unless the
    environment already names its own."""
    environ = os.environ if environ is None else environ
    if environ.get(PUBLIC_KEYS_ENV):
        return {}
    keys = {
        signer: development_key(run_dir / f"{signer}-actor-key.pem") for signer in ACTOR_SIGNERS
    }
    private = {
        signing_key_env(signer): ed25519.private_key_to_pem(key) for signer, key in keys.items()
    }
    public = {signer: public_key_text(key) for signer, key in keys.items()}
    return {**private, PUBLIC_KEYS_ENV: json.dumps(public)}
