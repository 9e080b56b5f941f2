"""Issue 18's "done when", on the real platform: an insider with database
access tampers with the log, and the auditor, holding gateway access only
(an auditor's token, the log's and the witness's verifier keys and the
deployment's key root, all pinned), finds it; a witness shown a checkpoint
inconsistent with the one it cosigned refuses it.

Each test runs on a platform of its own (the tampering cannot be undone
under a log that has checkpointed it), with its checkpointer pushing every
checkpoint to a real `ksmart-audit witness`, and first sees the untouched
log verify, so that what it finds afterwards is the tampering's doing.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from ksmart_common import ed25519, merkle
from ksmart_common.canonical import canonical_text
from ksmart_common.checkpoint import Checkpoint
from ksmart_common.envelope import compute_hash
from ksmart_common.event_signatures import SIGNING_KEY_ENV, EventSigner
from ksmart_common.eventstore import EventStore
from ksmart_common.signed_note import Signer, Verifier, open_note, sign
from ksmart_ops.log_key import log_key_environment
from tests.support import actions, citizen
from tests.support.platform import free_port, running_platform
from tests.support.tampering import events_unguarded
from tests.support.waiting import wait_for

AUDIT = [sys.executable, "-m", "ksmart_audit.cli"]
WITNESS_NAME = "witness.test/audit-department"


@dataclass
class Deployment:
    platform: object
    log_signer: Signer  # the checkpointer's key: only an insider who stole it holds this
    witness: Verifier
    witness_url: str
    witness_state: Path
    auditor_state: Path


def _witness_key(folder: Path) -> tuple[Path, str]:
    key_file = folder / "witness.pem"
    made = subprocess.run(
        [*AUDIT, "witness-keygen", "--name", WITNESS_NAME, "--output", str(key_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    return key_file, made.stdout.strip()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def deployment(folder: Path):
    """The platform, its checkpointer pushing to a real witness run apart."""
    log_env = log_key_environment(folder, {})  # the key running_platform will use
    log_key = ed25519.private_key_from_pem(log_env["KSMART_LOG_SIGNING_KEY"])
    log_signer = Signer(log_env["KSMART_LOG_ORIGIN"], log_key)
    key_file, witness_vkey = _witness_key(folder)
    port = free_port()
    witness_state = folder / "witness-state.json"
    witness = subprocess.Popen(
        [
            *AUDIT,
            "witness",
            "--name",
            WITNESS_NAME,
            "--key-file",
            str(key_file),
            "--log",
            log_signer.verifier.vkey(),
            "--state",
            str(witness_state),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _listening(port), message="the witness listening")
        url = f"http://127.0.0.1:{port}"
        environ = {"KSMART_WITNESSES": f"{witness_vkey}@{url}"}
        with running_platform(folder, environ=environ) as platform:
            yield Deployment(
                platform,
                log_signer,
                Verifier.from_vkey(witness_vkey),
                url,
                witness_state,
                folder / "auditor.checkpoint",
            )
    finally:
        witness.terminate()
        witness.wait(10)


@pytest.fixture
def deployed(tmp_path):
    with deployment(tmp_path) as running:
        yield running


def _file(platform, *steps) -> str:
    reply = citizen.submit(platform, citizen.application(platform))
    assert reply.status_code == 201, reply.text
    file_id = reply.json()["file_id"]
    for version, (user, action) in enumerate(steps, start=1):
        actions.take(platform, user, file_id, action, version=version)
    return file_id


def files(platform) -> list[str]:
    """Three files, filed and decided one after another: their events lie
    in the log in this order."""
    return [
        _file(platform, ("clerk.kochi", "verify"), ("secretary.kochi", "approve")),
        _file(platform, ("clerk.kochi", "verify")),
        _file(platform, ("clerk.kochi", "verify"), ("secretary.kochi", "approve")),
    ]


def _superuser(platform) -> sa.Engine:
    return platform.engine("applications")


def last_position(platform) -> int:
    engine = _superuser(platform)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT max(global_position) FROM events")).scalar_one()
    finally:
        engine.dispose()


def cosigned_checkpoint(deployed: Deployment, size: int) -> Checkpoint:
    """Wait for the served checkpoint of `size` events, cosigned by the witness."""

    def served():
        reply = requests.get(f"{deployed.platform.base_url}/api/v1/log/checkpoint", timeout=10)
        if reply.status_code != 200:
            return None
        note, verified = open_note(reply.text, [deployed.log_signer.verifier, deployed.witness])
        checkpoint = Checkpoint.from_text(note.text)
        cosigned = any(verifier.name == WITNESS_NAME for verifier in verified)
        return checkpoint if checkpoint.size == size and cosigned else None

    return wait_for(served, timeout=60, message=f"a cosigned checkpoint of {size} events")


def verify(deployed: Deployment):
    """`ksmart-audit verify` as the auditor runs it on their own machine:
    the gateway and an auditor's token, and what they pinned."""
    platform = deployed.platform
    env = {key: value for key, value in os.environ.items() if not key.startswith("KSMART_")}
    env["KSMART_AUDIT_TOKEN"] = platform.token("auditor")
    return subprocess.run(
        [
            *AUDIT,
            "verify",
            "--quiet",
            "--gateway",
            platform.base_url,
            "--log-key",
            deployed.log_signer.verifier.vkey(),
            "--witness",
            deployed.witness.vkey(),
            "--state",
            str(deployed.auditor_state),
            "--key-root",
            platform.env["KSMART_KEY_ROOT_PUBLIC"],
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=120,
    )


def untouched(deployed: Deployment) -> list[str]:
    """Files made, checkpointed and cosigned, and verified as they stand
    (the auditor remembers the checkpoint): the tests' common start."""
    made = files(deployed.platform)
    cosigned_checkpoint(deployed, last_position(deployed.platform))
    clean = verify(deployed)
    assert clean.returncode == 0, clean.stderr
    assert "VERIFIED" in clean.stderr
    assert "event signatures:" in clean.stderr and "0 legacy, unsigned" in clean.stderr
    return made


def _found(result, *expected: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    report = result.stderr
    assert "DIFFERENCE" in report, report
    for text in expected:
        assert text in report, report
    return report


def test_an_untouched_log_verifies_with_every_event_signed(deployed):
    untouched(deployed)
    # And again, from the checkpoint it remembered.
    again = verify(deployed)
    assert again.returncode == 0, again.stderr
    assert "extends the checkpoint" in again.stderr


def test_the_newest_events_deleted_after_a_checkpoint_are_found(deployed):
    made = untouched(deployed)
    with events_unguarded(deployed.platform) as conn:
        deleted = conn.execute(
            sa.text(
                "DELETE FROM events WHERE global_position > (SELECT max(global_position) - 2"
                " FROM events) RETURNING stream_id, stream_version"
            )
        ).all()
    # The newest file's last two decisions: its chain, read alone, still holds.
    assert {row.stream_id for row in deleted} == {f"file-{made[-1]}"}
    _found(verify(deployed), "log truncated", "the newest deleted")


def _forge_next_event(platform, file_id: str) -> tuple[int, int]:
    """As the applications role (its own INSERT grant, the guard on): an
    event after the file's last, at the log's next position and the current
    time, with a correct chain hash. Its (version, position)."""
    reader = EventStore(_superuser(platform))
    head = reader.read_stream(f"file-{file_id}")[-1]
    reader.engine.dispose()
    forged = replace(
        head,
        event_id=uuid.uuid4(),
        stream_version=head.stream_version + 1,
        global_position=last_position(platform) + 1,
        recorded_at=datetime.now(UTC),
        prev_hash=head.hash,
        data={**head.data, "remarks": "approved again"},
        signature=None,
    )
    forged = replace(forged, hash=compute_hash(forged))
    role = sa.create_engine(
        platform.databases["applications"].service_url, poolclass=sa.pool.NullPool
    )
    try:
        with role.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO events (global_position, event_id, stream_id, stream_version,"
                    " event_type, schema_version, data, metadata, recorded_at, prev_hash, hash)"
                    " VALUES (:position, :event_id, :stream_id, :version, :event_type,"
                    " :schema_version, CAST(:data AS json), CAST(:metadata AS json),"
                    " :recorded_at, :prev_hash, :hash)"
                ),
                {
                    "position": forged.global_position,
                    "event_id": forged.event_id,
                    "stream_id": forged.stream_id,
                    "version": forged.stream_version,
                    "event_type": forged.event_type,
                    "schema_version": forged.schema_version,
                    "data": canonical_text(forged.data),
                    "metadata": canonical_text(forged.metadata),
                    "recorded_at": forged.recorded_at,
                    "prev_hash": forged.prev_hash,
                    "hash": forged.hash,
                },
            )
    finally:
        role.dispose()
    return forged.stream_version, forged.global_position


def test_a_forged_event_appended_with_a_correct_chain_hash_is_found_unsigned(deployed):
    made = untouched(deployed)
    version, position = _forge_next_event(deployed.platform, made[0])
    # The checkpointer believes the table: the forgery becomes a leaf,
    # cosigned, and its chain and the log's tree are consistent.
    cosigned_checkpoint(deployed, position)
    where = f"file-{made[0]} v{version} (global position {position})"
    report = _found(verify(deployed), "unsigned event", where)
    for kind in ("altered", "broken link", "root differs", "log truncated"):
        assert f"[{kind}]" not in report, report


def _rewrite(conn, platform, file_id: str, signer: EventSigner) -> None:
    """The file's first event altered and its whole chain recomputed, each
    event re-signed with the event key, stolen from the Secret."""
    store = EventStore(_superuser(platform))
    events = store.read_stream(f"file-{file_id}")
    store.engine.dispose()
    prev = events[0].prev_hash
    for event in events:
        data = event.data
        if event.stream_version == 1:
            data = {**data, "form": {**data["form"], "child_name": "Someone Else"}}
        rewritten = replace(event, data=data, prev_hash=prev)
        rewritten = replace(rewritten, hash=compute_hash(rewritten))
        conn.execute(
            sa.text(
                "UPDATE events SET data = CAST(:data AS json), prev_hash = :prev, hash = :hash,"
                " signature = :signature WHERE global_position = :position"
            ),
            {
                "data": canonical_text(data),
                "prev": prev,
                "hash": rewritten.hash,
                "signature": signer.sign(rewritten.hash),
                "position": event.global_position,
            },
        )
        prev = rewritten.hash


def test_the_log_rewritten_consistently_is_found_against_the_cosigned_checkpoint(deployed):
    made = untouched(deployed)
    platform = deployed.platform
    stolen = EventSigner.of(ed25519.private_key_from_pem(platform.env[SIGNING_KEY_ENV]))
    with events_unguarded(platform) as conn:
        for file_id in made:
            _rewrite(conn, platform, file_id, stolen)
    report = _found(verify(deployed), "root differs", "leaf 0 is the first event that differs")
    # Every chain and every signature holds: only the checkpoint tells.
    for kind in ("altered", "broken link", "unsigned event", "mis-signed event"):
        assert f"[{kind}]" not in report, report


def test_a_whole_files_stream_deleted_is_found(deployed):
    made = untouched(deployed)
    with events_unguarded(deployed.platform) as conn:
        positions = (
            conn.execute(
                sa.text("DELETE FROM events WHERE stream_id = :s RETURNING global_position"),
                {"s": f"file-{made[1]}"},
            )
            .scalars()
            .all()
        )
    missing = f"positions {min(positions)} to {max(positions)} are missing"
    report = _found(verify(deployed), "[log truncated]", "[position gap]", missing)
    # The other files' chains hold: no chain names the deleted file.
    assert "[broken link]" not in report and "[altered]" not in report


def _add_checkpoint(deployed: Deployment, old: int, proof: list[bytes], checkpoint: Checkpoint):
    note = sign(checkpoint.text(), deployed.log_signer)
    body = f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return requests.post(
        f"{deployed.witness_url}/add-checkpoint", data=(body + "\n" + note).encode(), timeout=10
    )


def test_a_witness_refuses_a_checkpoint_inconsistent_with_its_last(deployed):
    untouched(deployed)
    platform = deployed.platform
    size = last_position(platform)
    cosigned = cosigned_checkpoint(deployed, size)
    witnessed = deployed.witness_state.read_text()
    # An insider holding the log's key signs a checkpoint of another history:
    # the log's leaves with the first one replaced, and one more leaf.
    leaves = requests.get(
        f"{platform.base_url}/api/v1/log/leaves", params={"start": 0, "end": size}, timeout=10
    ).json()["leaves"]
    hashed = [merkle.leaf_hash(bytes.fromhex(leaf["event_hash"])) for leaf in leaves]
    tree = merkle.MemoryTree([merkle.leaf_hash(b"forged"), *hashed[1:]])
    origin = cosigned.origin
    same_size = Checkpoint(origin, size, tree.root(size))
    tree.leaves.append(merkle.leaf_hash(b"one more"))
    grown = Checkpoint(origin, size + 1, tree.root(size + 1))
    # Another root for the size it cosigned: refused (409).
    assert _add_checkpoint(deployed, size, [], same_size).status_code == 409
    # A longer log whose proof holds for the rewritten history, not for the
    # root the witness cosigned: refused (422).
    proof = tree.consistency_proof(size, size + 1)
    assert _add_checkpoint(deployed, size, proof, grown).status_code == 422
    # A rollback to a smaller size, claimed from the start: refused (409).
    small = Checkpoint(origin, size - 1, merkle.root(hashed[:-1]))
    assert _add_checkpoint(deployed, 0, [], small).status_code == 409
    # It cosigned none of them: its record is the log's true checkpoint.
    assert deployed.witness_state.read_text() == witnessed
    assert verify(deployed).returncode == 0
