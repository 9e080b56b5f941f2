"""The witness (ksmart-audit witness) as C2SP tlog-witness has it: it
cosigns a log's first checkpoint and each one that extends it, and refuses
everything else with the spec's status: a wrong old size (409, with its own
size), a rollback (400/409), a second root for a cosigned size (409), a bad
proof (422), a signature of another key (403), an unknown log (404), a
malformed request (400). Its record is on disk before it answers, survives
a restart, and concurrent requests cannot walk it back."""

from __future__ import annotations

import threading

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ksmart_audit.state_files import StateFileError, read_json
from ksmart_audit.witness import SIZE_CONTENT_TYPE, Witness, WitnessState
from ksmart_audit.witness_server import make_server
from ksmart_common import signed_note
from ksmart_common.checkpoint import Checkpoint
from tests.support.fake_log import FakeLog, new_signer, new_witness_signer, request_body

NOW = 1_770_000_000


@pytest.fixture
def log():
    fake = FakeLog()
    fake.append(10)
    return fake


def _witness(log, path, signer=None):
    return Witness(
        signer or new_witness_signer(), [log.signer.verifier], WitnessState(path), clock=lambda: NOW
    )


def _cosigned(witness, log, reply, size):
    """The cosignature verifies over the checkpoint the log signed."""
    assert reply.status == 200, reply.body
    note = log.note(size) + reply.body
    opened, signed_by = signed_note.open_note(note, [witness.signer.verifier])
    assert signed_by == [witness.signer.verifier]
    assert opened.timestamp_of(witness.signer.verifier) == NOW
    return Checkpoint.from_text(opened.text)


def test_a_log_grows_under_the_witness_eye(log, tmp_path):
    witness = _witness(log, tmp_path / "witness.json")
    first = witness.add_checkpoint(log.add_checkpoint_body(0, 4))
    assert _cosigned(witness, log, first, 4).size == 4
    second = witness.add_checkpoint(log.add_checkpoint_body(4, 10))
    assert _cosigned(witness, log, second, 10).size == 10
    # Asked again for the same checkpoint, it cosigns it again.
    again = witness.add_checkpoint(log.add_checkpoint_body(10, 10))
    assert _cosigned(witness, log, again, 10).size == 10
    assert read_json(tmp_path / "witness.json")[log.origin]["size"] == 10

    # A restarted witness remembers: old 0 is no longer its size.
    witness.state.close()
    restarted = _witness(log, tmp_path / "witness.json", witness.signer)
    stale = restarted.add_checkpoint(log.add_checkpoint_body(0, 10))
    assert (stale.status, stale.content_type, stale.body) == (409, SIZE_CONTENT_TYPE, "10\n")


def test_a_second_process_cannot_share_its_state(log, tmp_path):
    _witness(log, tmp_path / "witness.json")
    with pytest.raises(StateFileError, match="another process"):
        _witness(log, tmp_path / "witness.json")


def test_rolled_back_forked_and_unproven_checkpoints_are_refused(log, tmp_path):
    witness = _witness(log, tmp_path / "witness.json")
    assert witness.add_checkpoint(log.add_checkpoint_body(0, 8)).status == 200

    # A rollback: smaller than what it cosigned, whatever old size is claimed.
    assert witness.add_checkpoint(log.add_checkpoint_body(8, 6)).status == 400
    claimed = witness.add_checkpoint(log.add_checkpoint_body(6, 6))
    assert (claimed.status, claimed.body) == (409, "8\n")

    # A fork: the same prefix rewritten, then grown.
    fork = FakeLog(log.hashes[:5], signer=log.signer)
    fork.append(5)
    same_size = witness.add_checkpoint(request_body(8, [], fork.note(8)))
    assert same_size.status == 409 and "cosigned with root" in same_size.body
    grown = witness.add_checkpoint(request_body(8, fork.consistency(8, 10), fork.note(10)))
    assert grown.status == 422 and "not consistent" in grown.body
    # The honest log's proof does not make the fork's checkpoint consistent.
    mixed = witness.add_checkpoint(request_body(8, log.consistency(8, 10), fork.note(10)))
    assert mixed.status == 422

    assert read_json(tmp_path / "witness.json")[log.origin]["size"] == 8
    assert witness.add_checkpoint(log.add_checkpoint_body(8, 10)).status == 200


def test_keys_origins_and_malformed_requests(log, tmp_path):
    witness = _witness(log, tmp_path / "witness.json")
    impostor = FakeLog(log.hashes, signer=new_signer(log.origin))
    assert witness.add_checkpoint(impostor.add_checkpoint_body(0)).status == 403
    stranger = FakeLog(log.hashes, origin="other.test/log")
    assert witness.add_checkpoint(stranger.add_checkpoint_body(0)).status == 404
    note = log.note(10)
    for body in (
        b"",
        b"old 0\n" + note.encode(),  # no blank line
        b"old 01\n\n" + note.encode(),
        b"old -1\n\n" + note.encode(),
        b"old 0\nnot-base64!\n\n" + note.encode(),
        b"old 0\nAAAA\n\n" + note.encode(),  # not a hash
        b"old 0\n\n" + log.checkpoint(10).text().encode(),  # unsigned
        b"old 0\n\n\xff",
        b"x" * 70_000,
    ):
        assert witness.add_checkpoint(body).status == 400, body[:40]
    with_proof_from_zero = request_body(0, log.consistency(4, 10), note)
    assert witness.add_checkpoint(with_proof_from_zero).status == 400
    assert read_json(tmp_path / "witness.json") is None  # nothing cosigned


def test_concurrent_requests_cosign_one_history(log, tmp_path):
    """Every thread claims old size 0 with a checkpoint of its own size: one
    is cosigned, the rest learn its size; none is walked back."""
    log.append(22)
    witness = _witness(log, tmp_path / "witness.json")
    bodies = {size: log.add_checkpoint_body(0, size) for size in range(1, 33)}
    replies: dict[int, object] = {}
    start = threading.Barrier(len(bodies))

    def submit(size):
        start.wait()
        replies[size] = witness.add_checkpoint(bodies[size])

    threads = [threading.Thread(target=submit, args=(size,)) for size in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [size for size, reply in replies.items() if reply.status == 200]
    assert len(won) == 1
    assert {reply.body for reply in replies.values() if reply.status == 409} == {f"{won[0]}\n"}
    assert read_json(tmp_path / "witness.json")[log.origin]["size"] == won[0]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(st.integers(1, 40), st.booleans(), st.sampled_from(["honest", "fork", "wrong"])),
        max_size=25,
    )
)
def test_whatever_it_is_sent_it_never_cosigns_two_histories(tmp_path_factory, steps):
    honest = FakeLog()
    honest.append(40)
    fork = FakeLog(honest.hashes[:10], signer=honest.signer)
    fork.append(30)
    witness = _witness(honest, tmp_path_factory.mktemp("w") / "witness.json")
    cosigned: dict[int, bytes] = {}
    latest = 0
    for size, right_old, which in steps:
        log = fork if which == "fork" else honest
        old = latest if right_old else max(0, min(size, latest + 1 - 2 * (latest % 2)))
        proof = log.consistency(old, size) if 0 < old <= size else []
        if which == "wrong" and proof:
            proof = proof[::-1] if len(proof) > 1 else [bytes(32)]
        reply = witness.add_checkpoint(request_body(old, proof, log.note(size)))
        if reply.status == 200:
            checkpoint = log.checkpoint(size)
            assert cosigned.setdefault(size, checkpoint.root_hash) == checkpoint.root_hash
            assert size >= latest
            latest = size
    # Everything cosigned lies on one line of growth.
    sizes = sorted(cosigned)
    line = honest if all(honest.checkpoint(s).root_hash == cosigned[s] for s in sizes) else fork
    assert all(line.checkpoint(s).root_hash == cosigned[s] for s in sizes)
    witness.state.close()


def test_served_over_http(log, tmp_path):
    witness = _witness(log, tmp_path / "witness.json")
    server = make_server(witness, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with requests.Session() as session:
            assert session.get(base + "/", timeout=5).text == witness.signer.verifier.vkey() + "\n"
            reply = session.post(
                base + "/add-checkpoint", data=log.add_checkpoint_body(0, 5), timeout=5
            )
            assert reply.status_code == 200 and reply.text.startswith("\u2014 witness.test/w1 ")
            stale = session.post(
                base + "/add-checkpoint", data=log.add_checkpoint_body(0, 6), timeout=5
            )
            assert stale.status_code == 409
            assert stale.headers["Content-Type"] == SIZE_CONTENT_TYPE and stale.text == "5\n"
            assert session.post(base + "/elsewhere", data=b"", timeout=5).status_code == 404
    finally:
        server.shutdown()
        server.server_close()
