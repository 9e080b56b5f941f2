"""The transparency log on the real platform: the checkpointer follows the
events, signs checkpoints that verify with the published key and whose size
and root are those of the events themselves, serves proofs that verify,
resumes after a restart without changing what it signed, gets cosignatures
from witnesses (one that knows an older checkpoint answers 409 first; one
that is down stops nothing), and keeps its tables its own.

The checkpointers here are started by the test (two replicas at once, then
again after a stop), beside a platform started without one."""

from __future__ import annotations

import base64
import random

import pytest
import requests
import sqlalchemy as sa

from ksmart_common import merkle
from ksmart_common.checkpoint import Checkpoint
from ksmart_common.signed_note import Verifier, open_note
from tests.support import citizen
from tests.support.checkpointers import (
    checkpointers,
    log_verifier,
    platform_without_checkpointer,
)
from tests.support.platform import free_port
from tests.support.tlog_witness import FakeWitness, serve
from tests.support.waiting import wait_for

API = "/api/v1/log"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with platform_without_checkpointer(tmp_path_factory.mktemp("tlog")) as running:
        yield running


@pytest.fixture(scope="module")
def log_key(platform) -> Verifier:
    return log_verifier(platform)


def get(platform, path, **params):
    reply = requests.get(f"{platform.base_url}{API}{path}", params=params, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply


def submit_files(platform, count):
    for _ in range(count):
        reply = citizen.submit(platform, citizen.application(platform))
        assert reply.status_code == 201, reply.text


def stored_leaf_hashes(platform) -> list[bytes]:
    engine = platform.engine("applications")
    with engine.connect() as conn:
        hashes = conn.execute(sa.text("SELECT hash FROM events ORDER BY global_position"))
        leaves = [merkle.leaf_hash(bytes.fromhex(value)) for value in hashes.scalars()]
    engine.dispose()
    return leaves


def latest(platform, log_key, at_least=1) -> Checkpoint:
    def signed():
        reply = requests.get(f"{platform.base_url}{API}/checkpoint", timeout=10)
        if reply.status_code != 200:
            return None
        note, _ = open_note(reply.text, [log_key])
        checkpoint = Checkpoint.from_text(note.text)
        return checkpoint if checkpoint.size >= at_least else None

    return wait_for(signed, timeout=30, message=f"a checkpoint of {at_least} events or more")


def stored_checkpoints(platform) -> list[tuple]:
    engine = platform.engine("applications")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT tree_size, root_hash, note FROM log_checkpoints ORDER BY tree_size")
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_the_log_follows_the_events_and_proves_them(platform, log_key, tmp_path):
    witness = FakeWitness(log_key)
    server, url = serve(witness)
    down = FakeWitness(log_key, name="witness.test/down")
    closed = f"http://127.0.0.1:{free_port()}"  # nobody listens
    # Before any checkpoint: 503, a problem document.
    reply = requests.get(f"{platform.base_url}{API}/checkpoint", timeout=10)
    assert reply.status_code == 503
    assert reply.headers["Content-Type"] == "application/problem+json"
    submit_files(platform, 3)

    witnesses = [(witness.vkey, url), (down.vkey, closed)]
    with checkpointers(platform, tmp_path, witnesses, replicas=2) as ops_urls:
        first = latest(platform, log_key, at_least=len(stored_leaf_hashes(platform)))
        # The published key is the one that signed, named after the origin.
        assert get(platform, "/key").text.strip() == log_key.vkey()
        assert first.origin == platform.env["KSMART_LOG_ORIGIN"]
        # Size and root are the events' own, recomputed from the database.
        leaves = stored_leaf_hashes(platform)
        assert first.root_hash == merkle.root(leaves[: first.size])

        # Inclusion proofs of random events verify against it.
        for index in random.sample(range(first.size), min(5, first.size)):
            proof = get(platform, "/proofs/inclusion", index=index, size=first.size).json()
            hashes = [base64.b64decode(value) for value in proof["hashes"]]
            merkle.verify_inclusion(index, first.size, leaves[index], hashes, first.root_hash)
        # The leaves name the events: positions in order, their stored hashes.
        mapped = get(platform, "/leaves", start=0, end=first.size).json()["leaves"]
        assert [leaf["index"] for leaf in mapped] == list(range(first.size))
        assert [merkle.leaf_hash(bytes.fromhex(leaf["event_hash"])) for leaf in mapped] == (
            leaves[: first.size]
        )

        # More events: a later checkpoint, consistent with the first.
        submit_files(platform, 2)
        second = latest(platform, log_key, at_least=len(stored_leaf_hashes(platform)))
        proof = get(platform, "/proofs/consistency", **{"from": first.size, "to": second.size})
        hashes = [base64.b64decode(value) for value in proof.json()["hashes"]]
        merkle.verify_consistency(
            first.size, second.size, hashes, first.root_hash, second.root_hash
        )
        assert proof.headers["Cache-Control"] == "public, max-age=31536000, immutable"

        # An event by its position: the citizen's proof, with the note.
        position = mapped[-1]["global_position"]
        answer = get(platform, f"/events/{position}/inclusion").json()
        note, _ = open_note(answer["checkpoint"], [log_key])
        assert Checkpoint.from_text(note.text).size == answer["size"]
        merkle.verify_inclusion(
            answer["index"],
            answer["size"],
            leaves[answer["index"]],
            [base64.b64decode(value) for value in answer["hashes"]],
            Checkpoint.from_text(note.text).root_hash,
        )

        # The witness cosigned; its cosignature is served with the checkpoint.
        def cosigned():
            served = get(platform, "/checkpoint").text
            _, verified = open_note(served, [witness.signer.verifier])
            return verified

        wait_for(cosigned, message="the witness's cosignature served")
        # The witness that is down stopped nothing: its failures are counted.
        failures = 'ksmart_witness_failures_total{witness="witness.test/down"}'
        wait_for(
            lambda: any(
                failures in requests.get(f"{url}/metrics", timeout=5).text for url in ops_urls
            ),
            message="the down witness's failures counted",
        )
    # Two replicas signed each size once: the table's key would refuse a second.
    sizes = [row[0] for row in stored_checkpoints(platform)]
    assert sizes == sorted(set(sizes))
    server.shutdown()


def test_a_restart_resumes_and_changes_nothing_signed(platform, log_key, tmp_path):
    witness = FakeWitness(log_key, name="witness.test/late")
    with checkpointers(platform, tmp_path / "before"):
        submit_files(platform, 1)
        before = latest(platform, log_key, at_least=len(stored_leaf_hashes(platform)))
    signed_before = stored_checkpoints(platform)
    # A witness that cosigned the last checkpoint elsewhere holds its size.
    witness.size, witness.root_hash = before.size, before.root_hash
    server, url = serve(witness)

    submit_files(platform, 2)
    with checkpointers(platform, tmp_path / "after", [(witness.vkey, url)]):
        after = latest(platform, log_key, at_least=len(stored_leaf_hashes(platform)))
        # It asked from 0, was told the witness's size (409), and proved from there.
        wait_for(lambda: after.size in witness.cosigned, message="the late witness's cosignature")
    assert witness.requests[0] == 0 and before.size in witness.requests
    assert stored_checkpoints(platform)[: len(signed_before)] == signed_before
    assert after.root_hash == merkle.root(stored_leaf_hashes(platform)[: after.size])
    server.shutdown()


def test_bad_questions_are_named_at_once(platform, log_key, tmp_path):
    with checkpointers(platform, tmp_path):
        checkpoint = latest(platform, log_key)
        too_big = checkpoint.size + 1000
        reply = requests.get(
            f"{platform.base_url}{API}/proofs/inclusion",
            params={"index": too_big, "size": too_big},
            timeout=10,
        )
        assert reply.status_code == 422
        assert {problem["field"] for problem in reply.json()["problems"]} == {"index", "size"}
        reply = requests.get(
            f"{platform.base_url}{API}/proofs/consistency", params={"from": "x"}, timeout=10
        )
        assert reply.status_code == 422
        assert {problem["field"] for problem in reply.json()["problems"]} == {"from", "to"}
        reply = requests.get(
            f"{platform.base_url}{API}/leaves", params={"start": 0, "end": 5000}, timeout=10
        )
        assert reply.status_code == 422
        assert [problem["field"] for problem in reply.json()["problems"]] == ["end"]
        reply = requests.get(f"{platform.base_url}{API}/events/999999/inclusion", timeout=10)
        assert reply.status_code == 404


@pytest.mark.parametrize("role", ["applications", "relay"])
def test_no_other_role_writes_the_logs_tables(platform, role):
    engine = sa.create_engine(platform.databases["applications"].url_as(role))
    for statement in (
        "INSERT INTO log_checkpoints (tree_size, root_hash, note) VALUES (999, '\\x00', 'x')",
        "INSERT INTO log_nodes (level, node_index, hash) VALUES (40, 0, '\\x00')",
        "INSERT INTO log_leaves (leaf_index, global_position) VALUES (999999, 999999)",
        "DELETE FROM log_cosignatures",
    ):
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            with engine.begin() as conn:
                conn.execute(sa.text(statement))
    engine.dispose()


def test_even_the_checkpointer_cannot_change_what_it_wrote(platform):
    engine = sa.create_engine(platform.databases["applications"].url_as("checkpointer"))
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE log_checkpoints SET note = 'forged'"))
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO events (global_position) VALUES (0)"))
    engine.dispose()
    # Nor the owner by mistake: the trigger refuses.
    owner = platform.engine("applications")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with owner.begin() as conn:
            conn.execute(sa.text("DELETE FROM log_nodes"))
    owner.dispose()
