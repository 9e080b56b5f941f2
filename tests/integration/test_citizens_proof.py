"""The citizen's proof on the real platform (issue 18, item 4): a file's
answer and the public certificate checks carry the inclusion proof of the
file's submission and of its certificate's issue against the latest
signed checkpoint, which verifies with the kernel's Merkle code and the
log's key; before a checkpoint includes them, null (and the certificate
check is not kept by caches); with no checkpointer answering, the file is
still answered, its `transparency` null.

The platform runs without a checkpointer: the test starts one that signs
rarely (so a new file waits), then one that signs twice a second."""

from __future__ import annotations

import base64

import pytest
import requests

from ksmart_common import merkle
from ksmart_common.checkpoint import Checkpoint
from ksmart_common.domain import certificate as certificates
from ksmart_common.signed_note import Verifier, open_note
from tests.support import actions, citizen
from tests.support.checkpointers import (
    checkpointers,
    log_verifier,
    platform_without_checkpointer,
)
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with platform_without_checkpointer(tmp_path_factory.mktemp("proof")) as running:
        yield running


@pytest.fixture(scope="module")
def log_key(platform) -> Verifier:
    return log_verifier(platform)


def api(platform, path: str) -> str:
    return f"{platform.base_url}/api/v1{path}"


def granted_file(platform) -> dict:
    file = citizen.submit(platform, citizen.application(platform)).json()
    actions.take(platform, "clerk.kochi", file["file_id"], "verify")
    return actions.take(platform, "secretary.kochi", file["file_id"], "approve")


def file_answer(platform, file_id: str) -> dict:
    reply = requests.get(
        api(platform, f"/files/{file_id}"), headers=platform.as_user("citizen"), timeout=10
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def check_by_number(platform, number: str) -> requests.Response:
    reply = requests.get(api(platform, f"/certificates/{number}"), timeout=10)
    assert reply.status_code == 200, reply.text
    return reply


def check_by_qr(platform, document: dict) -> dict:
    qr = certificates.qr_text(document)
    reply = requests.post(api(platform, "/certificates/verify"), json={"qr_text": qr}, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def verified_checkpoint(proof: dict, log_key: Verifier) -> Checkpoint:
    """The proof checked as a reader would: the note signed by the log's
    key, the event's hash at `index` of the tree with the note's root."""
    note, _ = open_note(proof["checkpoint"], [log_key])
    checkpoint = Checkpoint.from_text(note.text)
    assert checkpoint.size == proof["size"]
    merkle.verify_inclusion(
        proof["index"],
        proof["size"],
        merkle.leaf_hash(bytes.fromhex(proof["event_hash"])),
        [base64.b64decode(value) for value in proof["hashes"]],
        checkpoint.root_hash,
    )
    return checkpoint


def test_a_granted_file_and_its_certificate_carry_their_proofs_once_checkpointed(
    platform, log_key, tmp_path
):
    # No checkpointer answering: the file is answered all the same.
    early = granted_file(platform)
    assert file_answer(platform, early["file_id"])["transparency"] is None

    # One that signs once (its first checkpoint), then not for an hour.
    rarely = {"KSMART_CHECKPOINT_SECONDS": "3600"}
    with checkpointers(platform, tmp_path / "rare", environ=rarely):
        first = wait_for(
            lambda: file_answer(platform, early["file_id"])["transparency"]["certificate"],
            message="the first checkpoint, holding the early file",
        )
        verified_checkpoint(first, log_key)
        waiting = granted_file(platform)
        pending = file_answer(platform, waiting["file_id"])["transparency"]
        assert pending == {"submission": None, "certificate": None}
        verdict = check_by_number(platform, waiting["file_number"])
        assert verdict.json()["valid"] and verdict.json()["transparency"] == {"certificate": None}
        assert verdict.headers["Cache-Control"] == "no-cache", "asked again until included"

    with checkpointers(platform, tmp_path / "often"):

        def included():
            entries = file_answer(platform, waiting["file_id"])["transparency"]
            return entries if entries and all(entries.values()) else None

        entries = wait_for(included, message="a checkpoint holding the granted file")
        submission = verified_checkpoint(entries["submission"], log_key)
        issued = verified_checkpoint(entries["certificate"], log_key)
        assert submission == issued, "both against the latest checkpoint"
        assert entries["certificate"]["index"] > entries["submission"]["index"]

        verdict = check_by_number(platform, waiting["file_number"])
        proof = verdict.json()["transparency"]["certificate"]
        verified_checkpoint(proof, log_key)
        assert proof["event_hash"] == entries["certificate"]["event_hash"]
        assert verdict.headers["Cache-Control"] == "public, max-age=5"

        # By its QR code: the same event, proved.
        document = file_answer(platform, waiting["file_id"])["certificate"]
        by_qr = check_by_qr(platform, document)
        verified_checkpoint(by_qr["transparency"]["certificate"], log_key)
        assert by_qr["transparency"]["certificate"]["event_hash"] == proof["event_hash"]

        # A certificate that does not verify is shown no proof of anything.
        forged = {**document, "payload": {**document["payload"], "holder_name": "Somebody"}}
        refused = check_by_qr(platform, forged)
        assert refused["valid"] is False and refused["transparency"] is None
