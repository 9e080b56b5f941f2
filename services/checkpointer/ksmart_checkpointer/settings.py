"""The checkpointer's settings, from the environment (ksmart_common.config).

    KSMART_CHECKPOINTER_DATABASE_URL  the applications database, as its own role
    KSMART_LOG_SIGNING_KEY            the log's Ed25519 key (PEM), from the Secret
    KSMART_LOG_ORIGIN                 the log's name: the checkpoint's first line
    KSMART_CHECKPOINT_SECONDS         a checkpoint at most this often (10)
    KSMART_WITNESSES                  `<witness vkey>@<base URL>`, comma separated

There is no default key: a log's key is its identity, pinned by every
auditor, so it comes from the deployment's Secret (`make run` and the tests
make a development key under their run folder)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ksmart_checkpointer.witnesses import Witness, parse_witnesses
from ksmart_common import config, key_environment
from ksmart_common.signed_note import Signer

SIGNING_KEY_ENV = "KSMART_LOG_SIGNING_KEY"
CHECKPOINT_SECONDS_ENV = "KSMART_CHECKPOINT_SECONDS"
ORIGIN_ENV = "KSMART_LOG_ORIGIN"
DEFAULT_ORIGIN = "ksmart.kerala.gov.in/events"


@dataclass(frozen=True)
class LogSettings:
    signer: Signer
    checkpoint_seconds: float
    witnesses: tuple[Witness, ...]

    @property
    def origin(self) -> str:
        return self.signer.name

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> LogSettings:
        private_key = key_environment.private_key_from_environment(SIGNING_KEY_ENV, environ)
        if private_key is None:
            raise RuntimeError(f"{SIGNING_KEY_ENV} is not set: the log has no key to sign with")
        origin = config.env(ORIGIN_ENV, DEFAULT_ORIGIN, environ)
        return cls(
            signer=Signer(origin, private_key),
            checkpoint_seconds=checkpoint_seconds(environ),
            witnesses=tuple(parse_witnesses(config.env("KSMART_WITNESSES", "", environ))),
        )


def checkpoint_seconds(environ: Mapping[str, str] | None = None) -> float:
    return float(config.env(CHECKPOINT_SECONDS_ENV, "10", environ))


def tick_seconds(environ: Mapping[str, str] | None = None) -> float:
    """How often the tree follows the events: a few times per checkpoint
    interval, so a checkpoint is signed soon after it is due, and the tree
    (hence proofs) never far behind the events."""
    return max(0.05, min(1.0, checkpoint_seconds(environ) / 4))
