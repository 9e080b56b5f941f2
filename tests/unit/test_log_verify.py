"""`ksmart-audit verify`'s log check (ksmart_audit.log_verify) against a fake
of the gateway's log and audit endpoints over a log in memory: the first run
remembers the checkpoint; the next finds a rollback, a fork, the newest
events deleted and a replaced event, and keeps the old checkpoint as
evidence instead of the bad one."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

from ksmart_audit.log_verify import LogOptions, LogVerification
from ksmart_audit.source import HttpRefused
from ksmart_audit.state_files import read_json
from ksmart_common.merkle import leaf_hash
from tests.support.fake_log import FakeLog, new_witness_signer, stored_hashes


class FakeGateway:
    """The endpoints LogClient and the source use, served from a FakeLog
    (the log's own tree) and a list of events (the table, maybe tampered)."""

    def __init__(self, log: FakeLog, size: int, witness) -> None:
        self.tlog, self.size, self.witness = log, size, witness
        self.events = [self.event(index, h) for index, h in enumerate(log.hashes)]

    @staticmethod
    def event(index: int, stored_hash: str) -> dict:
        return {
            "global_position": index + 1,
            "stream_id": f"file-{index}",
            "stream_version": 1,
            "hash": stored_hash,
            "recorded_at": datetime.now(UTC).isoformat(),
        }

    def get_text(self, path, params=None):
        assert path == "/api/v1/log/checkpoint"
        return self.tlog.note(self.size, [self.witness], at=1_770_000_000)

    def get(self, path, params=None):
        assert path == "/api/v1/log/proofs/consistency"
        old, new = params["from"], params["to"]
        if not 0 < old <= new <= self.size:
            raise HttpRefused(422, "from/to")
        return {"hashes": [base64.b64encode(h).decode() for h in self.tlog.consistency(old, new)]}

    def log(self, after=0):
        """The audit events endpoint, as HttpSource.log reads it."""
        return (event for event in self.events if event["global_position"] > after)


def _verify(gateway: FakeGateway, state: Path, witness) -> tuple[list, LogVerification]:
    options = LogOptions(gateway.tlog.signer.verifier, (witness.verifier,), 1, state, 300.0)
    verification = LogVerification(gateway, options)
    verification.begin()
    for _ in verification.follow(gateway.log()):
        pass
    return list(verification.finish()), verification


def test_a_log_checked_run_after_run(tmp_path):
    witness = new_witness_signer()
    log = FakeLog()
    log.append(30)
    state = tmp_path / "log.checkpoint"
    gateway = FakeGateway(log, 20, witness)

    problems, verification = _verify(gateway, state, witness)
    assert problems == []
    assert "no checkpoint seen before" in " ".join(verification.notes())
    assert read_json(state)["size"] == 20

    gateway.size = 30
    problems, verification = _verify(gateway, state, witness)
    assert problems == [] and "extends the checkpoint of size 20" in " ".join(verification.notes())

    # Rolled back to 25: refused, and the state keeps 30.
    gateway.size = 25
    problems, _ = _verify(gateway, state, witness)
    assert "log rolled back" in [p.kind for p in problems]
    assert read_json(state)["size"] == 30

    # The log rewritten from leaf 12 and signed again: a fork.
    rewritten = FakeLog(log.hashes[:12] + stored_hashes(18), signer=log.signer)
    forked = FakeGateway(rewritten, 30, witness)
    problems, _ = _verify(forked, state, witness)
    assert "log forked" in [p.kind for p in problems]
    assert read_json(state)["root"] == base64.b64encode(log.tree.root(30)).decode()


def test_events_deleted_or_replaced_under_a_checkpoint(tmp_path):
    witness = new_witness_signer()
    log = FakeLog()
    log.append(30)
    gateway = FakeGateway(log, 30, witness)
    gateway.events = gateway.events[:27]  # the newest three deleted
    problems, _ = _verify(gateway, tmp_path / "a", witness)
    assert [p.kind for p in problems] == ["log truncated"]

    gateway = FakeGateway(log, 30, witness)
    gateway.events[11] = FakeGateway.event(11, stored_hashes(1)[0])  # a correct chain, say
    problems, _ = _verify(gateway, tmp_path / "b", witness)
    assert [(p.kind, p.position) for p in problems] == [("root differs", 12)]
    assert leaf_hash(bytes.fromhex(log.hashes[11])) != leaf_hash(
        bytes.fromhex(gateway.events[11]["hash"])
    )
