"""Signed notes and checkpoints as C2SP specifies them: the spec's own
example note verifies with its published key; a log's checkpoint and a
witness's cosignature round-trip; and every way a note may be wrong is
refused."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ksmart_common import signed_note
from ksmart_common.checkpoint import Checkpoint
from ksmart_common.signed_note import COSIGNATURE_V1, NoteError, Signer, Verifier

# The example of golang.org/x/mod/sumdb/note, with its verifier key.
PEACE_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PEACE_NOTE = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZS"
    "NXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def _signer(name="ksmart.example/log", kind=signed_note.ED25519) -> Signer:
    return Signer(name, Ed25519PrivateKey.generate(), kind)


def test_the_reference_note_verifies_with_its_published_key():
    verifier = Verifier.from_vkey(PEACE_VKEY)
    assert verifier.vkey() == PEACE_VKEY
    note, signed_by = signed_note.open_note(PEACE_NOTE, [verifier])
    assert signed_by == [verifier] and note.text.startswith("If you think")
    tampered = PEACE_NOTE.replace("answer", "question")
    with pytest.raises(NoteError):
        signed_note.open_note(tampered, [verifier])


def test_a_checkpoint_signed_by_the_log_and_cosigned_by_a_witness():
    log, witness = _signer(), _signer("witness.example/audit", COSIGNATURE_V1)
    checkpoint = Checkpoint("ksmart.example/log", 8, bytes(range(32)))
    assert Checkpoint.from_text(checkpoint.text()) == checkpoint
    note = signed_note.sign(checkpoint.text(), log)
    cosigned = signed_note.add_signature(note, witness, timestamp=1_765_000_000)
    opened, signed_by = signed_note.open_note(cosigned, [log.verifier, witness.verifier])
    assert signed_by == [log.verifier, witness.verifier]
    assert opened.timestamp_of(witness.verifier) == 1_765_000_000
    assert Checkpoint.from_text(opened.text) == checkpoint
    # The witness's key as its operator publishes it.
    assert Verifier.from_vkey(witness.verifier.vkey()) == witness.verifier


def test_unknown_keys_are_ignored_but_no_trusted_signature_is_refused():
    log, stranger = _signer(), _signer("someone.else/log")
    note = signed_note.add_signature(signed_note.sign("a\n", log), stranger)
    assert signed_note.open_note(note, [log.verifier])[1] == [log.verifier]
    with pytest.raises(NoteError, match="no trusted key"):
        signed_note.open_note(note, [_signer().verifier])


def test_a_known_key_whose_signature_fails_refuses_the_whole_note():
    log = _signer()
    note = signed_note.sign("ksmart.example/log\n1\nAAAA\n", log)
    name, _, encoded = note.splitlines()[-1].removeprefix("\u2014 ").partition(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 1
    forged = note.replace(encoded, base64.b64encode(bytes(raw)).decode())
    with pytest.raises(NoteError, match="does not verify"):
        signed_note.open_note(forged, [log.verifier])


@pytest.mark.parametrize(
    "text",
    [
        "no newline at the end",
        "origin\n1\n",  # no root
        "origin\n01\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "origin\n1\nnot base64!\n",
        "origin\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",
        "origin\n\n1\n" + base64.b64encode(bytes(32)).decode() + "\n",
    ],
)
def test_a_malformed_checkpoint_is_refused(text):
    with pytest.raises(NoteError):
        Checkpoint.from_text(text)


@pytest.mark.parametrize(
    "note",
    [
        "text\n",  # no signature
        "text\n\n— name\n",
        "text\n\nnot a signature line\n",
        "text\n\n— name !!!!\n",
        "te\x07xt\n\n— name AAAAAAAA\n",
    ],
)
def test_a_malformed_note_is_refused(note):
    with pytest.raises(NoteError):
        signed_note.open_note(note, [_signer().verifier])


def test_a_key_name_with_a_space_or_plus_and_a_wrong_key_id_are_refused():
    with pytest.raises(NoteError):
        _signer("has space")
    with pytest.raises(NoteError):
        _signer("has+plus")
    name, _, rest = PEACE_VKEY.partition("+")
    with pytest.raises(NoteError, match="key ID"):
        Verifier.from_vkey(f"{name}+00000000+{rest.partition('+')[2]}")


def test_a_verifier_key_whose_base64_holds_a_plus_round_trips():
    # One key in ~4 has a "+" in its base64: it is the key's, not a separator.
    keys = [_signer("witness.example/w1", COSIGNATURE_V1) for _ in range(40)]
    with_plus = [key for key in keys if "+" in key.verifier.vkey().split("+", 2)[2]]
    assert with_plus
    for key in with_plus:
        assert Verifier.from_vkey(key.verifier.vkey()).key_id == key.verifier.key_id
