"""The checkpointer: the transparency log over the event store.

It follows the applications service's events (read only, with a database
role of its own), keeps the Merkle tree of them in tables no other role can
write, signs a checkpoint whenever new events exist (at most every
KSMART_CHECKPOINT_SECONDS) with the log's key from the Secret, pushes each
to the configured witnesses, and answers the gateway's questions: the
latest checkpoint, the log's key, inclusion and consistency proofs, leaves.

Any number of replicas may run: a transaction-scoped advisory lock lets one
extend the tree and sign at a time (store.py); every replica answers.
"""

from __future__ import annotations

from nameko.extensions import DependencyProvider
from nameko.timer import timer

from ksmart_checkpointer.settings import LogSettings, tick_seconds
from ksmart_checkpointer.store import LogStore
from ksmart_checkpointer.transparency_log import TransparencyLog
from ksmart_common.database import DB_URL_CONFIG_KEY, create_engine
from ksmart_common.errors import InvalidInput, NotFound
from ksmart_common.operations import Operations
from ksmart_common.rpc import rpc

CALLER_ERRORS = (InvalidInput, NotFound)


class TransparencyLogProvider(DependencyProvider):
    """The log, with its own engine (the readiness probe checks it)."""

    def setup(self) -> None:
        self.engine = create_engine(
            self.container.config[DB_URL_CONFIG_KEY], pool_size=self.container.max_workers
        )
        self.log = TransparencyLog(
            LogStore(self.engine),
            LogSettings.from_environment(),
            self.container.spawn_managed_thread,
        )

    def stop(self) -> None:
        self.engine.dispose()

    kill = stop

    def get_dependency(self, worker_ctx) -> TransparencyLog:
        return self.log


class CheckpointerService:
    name = "checkpointer"

    # Health, readiness and metrics on the operations port; times every worker.
    ops = Operations()
    log = TransparencyLogProvider()

    @timer(interval=tick_seconds())
    def follow(self) -> None:
        self.log.follow()

    @rpc
    def latest_checkpoint(self) -> dict | None:
        """The latest checkpoint: its size, root and cosigned note (None before the first)."""
        return self.log.latest_checkpoint()

    @rpc
    def log_key(self) -> str:
        """The log's verifier key (vkey), which auditors pin."""
        return self.log.vkey()

    @rpc(expected_exceptions=CALLER_ERRORS)
    def inclusion_proof(self, index: int, size: int) -> dict:
        return self.log.inclusion_proof(index, size)

    @rpc(expected_exceptions=CALLER_ERRORS)
    def consistency_proof(self, old_size: int, new_size: int) -> dict:
        return self.log.consistency_proof(old_size, new_size)

    @rpc(expected_exceptions=CALLER_ERRORS)
    def leaves(self, start: int, end: int) -> dict:
        return self.log.leaves(start, end)

    @rpc(expected_exceptions=CALLER_ERRORS)
    def event_inclusion(self, global_position: int, size: int | None = None) -> dict:
        return self.log.event_inclusion(global_position, size)

    @rpc
    def included(self, global_positions: list[int]) -> dict:
        """Each event's proof against the latest checkpoint, or None if no
        checkpoint includes it yet: for a file's or a certificate's answer."""
        return self.log.included(global_positions)
