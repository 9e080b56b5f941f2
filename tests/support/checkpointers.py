"""Checkpointer processes a test starts beside a platform started without
one (running_platform(names=...)), as the runner starts them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ksmart_common import ed25519
from ksmart_common.signed_note import Signer, Verifier
from ksmart_ops.devserver import SERVICES, start, stop, wait_for_exit
from tests.support.platform import free_port, running_platform


@contextlib.contextmanager
def checkpointers(
    platform, run_dir: Path, witnesses=(), replicas: int = 1, environ: dict | None = None
) -> Iterator[list[str]]:
    """`replicas` checkpointer processes; yields their operations URLs."""
    processes, ops_urls = {}, []
    for replica in range(replicas):
        env = {
            **platform.env,
            "KSMART_OPS_ADDRESS_CHECKPOINTER": f"127.0.0.1:{free_port()}",
            "KSMART_WITNESSES": ",".join(f"{vkey}@{url}" for vkey, url in witnesses),
            **(environ or {}),
        }
        started = start(run_dir / f"replica-{replica}", env, names=["checkpointer"])
        processes.update({f"{name}-{replica}": p for name, p in started.items()})
        ops_urls.append(f"http://{env['KSMART_OPS_ADDRESS_CHECKPOINTER']}")
    try:
        yield ops_urls
    finally:
        for replica in range(replicas):
            stop(run_dir / f"replica-{replica}")
        wait_for_exit(processes)


@contextlib.contextmanager
def platform_without_checkpointer(run_dir: Path) -> Iterator:
    """A whole platform but its checkpointer, which the test starts
    (checkpointers) when and as it wants."""
    names = (*(name for name in SERVICES if name != "checkpointer"), "relay")
    with running_platform(run_dir, names=names) as running:
        yield running


def log_verifier(platform) -> Verifier:
    """The log's key as auditors pin it: the checkpoints verify with it."""
    key = ed25519.private_key_from_pem(platform.env["KSMART_LOG_SIGNING_KEY"])
    return Signer(platform.env["KSMART_LOG_ORIGIN"], key).verifier
