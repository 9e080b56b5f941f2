"""The log as the checkpointer keeps and serves it: following the events,
signing checkpoints, collecting cosignatures, answering proofs.

`follow` runs on the service's timer. It absorbs every new event (in
batches, each its own transaction under the writer's lock), signs a
checkpoint of the whole tree when the tree grew and the last checkpoint
is at least KSMART_CHECKPOINT_SECONDS old, and asks each witness that
lacks the latest checkpoint for its cosignature, on a green thread of its
own so a slow witness holds up neither the log nor the others.

The answers are plain JSON (hashes in base64) for the gateway, which
serves them as the public log endpoints (ksmart_gateway.transparency).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from ksmart_checkpointer.settings import LogSettings
from ksmart_checkpointer.store import LogStore, StoredCheckpoint, b64
from ksmart_checkpointer.witnesses import Witness, WitnessError, cosign
from ksmart_common import metrics
from ksmart_common.checkpoint import Checkpoint
from ksmart_common.errors import InvalidInput, NotFound
from ksmart_common.logging import get_logger
from ksmart_common.signed_note import sign

log = get_logger(__name__)

ABSORB_BATCH = 5_000
MAX_LEAVES = 1_000
WITNESS_BACKOFF_SECONDS = (1, 2, 5, 10, 30, 60)


@dataclass
class WitnessState:
    """What this process knows of a witness: the size it holds, whether a
    request is in flight, and when to try again after a failure."""

    size: int = 0
    busy: bool = False
    failures: int = 0
    retry_at: float = 0.0


@dataclass
class TransparencyLog:
    store: LogStore
    settings: LogSettings
    # Runs a function on a green thread the container manages.
    spawn: Callable[[Callable[[], None]], object]
    session: requests.Session = field(default_factory=requests.Session)
    witness_states: dict[str, WitnessState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cosigned = self.store.cosigned_sizes()
        for witness in self.settings.witnesses:
            self.witness_states[witness.vkey] = WitnessState(size=cosigned.get(witness.vkey, 0))

    # -- the timer's turn ------------------------------------------------------------

    def follow(self) -> None:
        while True:
            absorbed = self.store.absorb(ABSORB_BATCH)
            if absorbed is None:
                return  # another replica leads
            metrics.LOG_EVENTS_ABSORBED.inc(absorbed)
            # A long backlog still gets checkpoints as it is absorbed.
            self.store.sign_if_due(self._sign, self.settings.checkpoint_seconds)
            if absorbed < ABSORB_BATCH:
                break
        latest = self.store.latest_checkpoint()
        self._observe(latest)
        if latest is not None:
            self._ask_witnesses(latest)

    def _sign(self, size: int, root_hash: bytes) -> str:
        text = Checkpoint(self.settings.origin, size, root_hash).text()
        log.info("checkpoint signed", size=size, root_hash=base64.b64encode(root_hash).decode())
        return sign(text, self.settings.signer)

    def _observe(self, latest: StoredCheckpoint | None) -> None:
        head = self.store.head()
        metrics.LOG_TREE_SIZE.set(head.size)
        lag_events, lag_seconds = self.store.lag()
        metrics.LOG_LAG_EVENTS.set(lag_events)
        metrics.LOG_LAG_SECONDS.set(lag_seconds)
        if latest is not None:
            metrics.LOG_CHECKPOINT_SIZE.set(latest.size)
            metrics.LOG_CHECKPOINT_AGE.set(time.time() - latest.signed_at.timestamp())

    def _ask_witnesses(self, latest: StoredCheckpoint) -> None:
        now = time.monotonic()
        for witness in self.settings.witnesses:
            state = self.witness_states[witness.vkey]
            if state.busy or state.size >= latest.size or now < state.retry_at:
                continue
            state.busy = True
            self.spawn(lambda witness=witness, state=state: self._push(witness, state, latest))

    def _push(self, witness: Witness, state: WitnessState, latest: StoredCheckpoint) -> None:
        try:
            lines, size = cosign(
                witness,
                latest.note,
                latest.size,
                state.size,
                lambda old: b64(self.store.consistency_proof(old, latest.size)),
                self.session,
            )
            self.store.add_cosignature(latest.size, witness.vkey, lines)
            state.size, state.failures, state.retry_at = size, 0, 0.0
            metrics.WITNESS_COSIGNATURES.labels(witness.name).inc()
            log.info("checkpoint cosigned", witness=witness.name, size=size)
        except WitnessError as error:
            backoff = WITNESS_BACKOFF_SECONDS[min(state.failures, len(WITNESS_BACKOFF_SECONDS) - 1)]
            state.failures += 1
            state.retry_at = time.monotonic() + backoff
            metrics.WITNESS_FAILURES.labels(witness.name).inc()
            log.warning("witness did not cosign", witness=witness.name, reason=str(error))
        except Exception as error:  # noqa: BLE001 - our own trouble (the database): try later
            state.retry_at = time.monotonic() + WITNESS_BACKOFF_SECONDS[-1]
            metrics.WITNESS_FAILURES.labels(witness.name).inc()
            log.warning("cosignature not stored", witness=witness.name, error=repr(error))
        finally:
            state.busy = False

    # -- answers ----------------------------------------------------------------------

    def vkey(self) -> str:
        return self.settings.signer.verifier.vkey()

    def latest_checkpoint(self) -> dict | None:
        latest = self.store.latest_checkpoint()
        return None if latest is None else checkpoint_answer(latest)

    def inclusion_proof(self, index: int, size: int) -> dict:
        problems = self._size_problems("size", size)
        if not 0 <= index < size:
            problems.append(
                {"field": "index", "message": f"a leaf of the tree of {size}: 0 to {size - 1}"}
            )
        _refuse(problems)
        return self._inclusion(index, size)

    def _inclusion(self, index: int, size: int) -> dict:
        hashes = self.store.inclusion_proof(index, size)
        return {"index": index, "size": size, "hashes": b64(hashes)}

    def consistency_proof(self, old_size: int, new_size: int) -> dict:
        problems = self._size_problems("to", new_size)
        if not 0 < old_size <= new_size:
            problems.append({"field": "from", "message": f"from 1 to {max(new_size, 1)}"})
        _refuse(problems)
        hashes = self.store.consistency_proof(old_size, new_size)
        return {"from": old_size, "to": new_size, "hashes": b64(hashes)}

    def leaves(self, start: int, end: int) -> dict:
        problems = []
        if start < 0:
            problems.append({"field": "start", "message": "0 or more"})
        if not start < end <= start + MAX_LEAVES:
            problems.append(
                {"field": "end", "message": f"after start, at most {MAX_LEAVES} leaves on"}
            )
        _refuse(problems)
        return {"leaves": self.store.leaves(start, end)}

    def event_inclusion(self, global_position: int, size: int | None = None) -> dict:
        """The proof that the event at `global_position` is in the tree of
        `size` (the latest checkpoint's when None), with that checkpoint's
        cosigned note when `size` is a checkpointed one. NotFound when
        there is no such event, or no checkpoint includes it yet."""
        return self._event_inclusion(global_position, size, self.store.latest_checkpoint())

    def _event_inclusion(
        self, global_position: int, size: int | None, latest: StoredCheckpoint | None
    ) -> dict:
        index = self.store.leaf_index_of(global_position)
        if index is None and not self.store.event_exists(global_position):
            raise NotFound(f"no event has the global position {global_position}")
        if size is None:
            if latest is None or index is None or index >= latest.size:
                raise NotFound(f"the event at {global_position} is not yet in a checkpoint")
            checkpoint = latest
        else:
            _refuse(self._size_problems("size", size, latest))
            if index is None or index >= size:
                raise NotFound(f"the event at {global_position} is not in the tree of {size}")
            checkpoint = self.store.checkpoint(size)
        # Index and size were checked above, against the same latest checkpoint.
        proof = self._inclusion(index, checkpoint.size if checkpoint else size)
        return {
            **proof,
            "global_position": global_position,
            "checkpoint": None if checkpoint is None else checkpoint.cosigned_note,
        }

    def included(self, global_positions: list[int]) -> dict[str, dict | None]:
        """Each event's proof against the latest checkpoint, or None while
        no checkpoint includes it (or there is no such event). All against
        one checkpoint, read once."""
        latest = self.store.latest_checkpoint()
        answers: dict[str, dict | None] = {}
        for position in global_positions:
            try:
                answers[str(position)] = self._event_inclusion(position, None, latest)
            except NotFound:
                answers[str(position)] = None
        return answers

    def _size_problems(
        self, name: str, size: int, latest: StoredCheckpoint | None = None
    ) -> list[dict]:
        latest = latest or self.store.latest_checkpoint()
        largest = 0 if latest is None else latest.size
        if not 0 < size <= largest:
            if largest == 0:
                return [{"field": name, "message": "there is no checkpoint yet"}]
            return [{"field": name, "message": f"a checkpointed size: 1 to {largest}"}]
        return []


def checkpoint_answer(checkpoint: StoredCheckpoint) -> dict:
    return {
        "size": checkpoint.size,
        "root_hash": base64.b64encode(checkpoint.root_hash).decode(),
        "note": checkpoint.cosigned_note,
        "signed_at": checkpoint.signed_at.isoformat(),
        "cosignatures": len(checkpoint.cosignature_lines),
    }


def _refuse(problems: list[dict]) -> None:
    if problems:
        raise InvalidInput("the request has problems", problems)
