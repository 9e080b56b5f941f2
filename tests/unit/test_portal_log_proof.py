"""The citizen's proof in the portal (issue 18, item 4): the certificate
check, a citizen's file and a counter's acknowledgement say an event is
recorded in the public log only after the portal itself checked its
inclusion proof against a checkpoint signed by the log's key; a proof that
does not verify is said to have failed, never shown as recorded. The
gateway is faked at the HTTP boundary (tests.unit.test_portal), the log in
memory (tests.support.fake_log)."""

from __future__ import annotations

import pytest

from ksmart_common.signed_note import Signer
from ksmart_portal import i18n, log_proof
from tests.support.fake_log import FakeLog, new_signer, new_witness_signer
from tests.unit.test_portal import FILE_ID, NUMBER, _file, portal, signed_in
from tests.unit.test_portal_counter import _filed, counter

RECORDED_WITNESSED = (
    "Recorded in the public log: entry 3 of the checkpoint of size 7, signed by the platform "
    "and cosigned by 1 witness."
)
RECORDED = (
    "Recorded in the public log: entry 0 of the checkpoint of size 7, signed by the platform."
)
PENDING = "Not yet in the public log (it is added within a minute)."
FAILED = "The proof that this is in the public log did not verify"


@pytest.fixture
def log() -> FakeLog:
    made = FakeLog()
    made.append(7)
    return made


def vkey(signer: Signer) -> str:
    return signer.verifier.vkey() + "\n"


# -- the check itself ------------------------------------------------------------------


def test_a_proof_that_verifies_names_its_entry_checkpoint_and_witnesses(log):
    proof = log.event_proof(3, cosigners=[new_witness_signer()])
    standing = log_proof.check_proof(proof, vkey(log.signer))
    assert standing == log_proof.LogStanding(log_proof.RECORDED, index=3, size=7, witnesses=1)
    assert log_proof.check_proof(None, vkey(log.signer)).status == log_proof.PENDING


@pytest.mark.parametrize(
    "spoil",
    [
        lambda proof, log: {**proof, "event_hash": log.hashes[4]},  # another event
        lambda proof, log: {**proof, "index": 2},
        lambda proof, log: {**proof, "hashes": proof["hashes"][:-1]},
        lambda proof, log: {**proof, "size": 6},
        # A checkpoint the log's key did not sign, of the same tree.
        lambda proof, log: {
            **proof,
            "checkpoint": FakeLog(log.hashes, signer=new_signer(log.origin)).note(),
        },
        # Signed by the key, but of a tree without the event.
        lambda proof, log: {
            **proof,
            "checkpoint": FakeLog(log.hashes[:3] * 3, signer=log.signer).note(7),
        },
        lambda proof, log: {**proof, "checkpoint": "not a note"},
        lambda proof, log: {k: v for k, v in proof.items() if k != "event_hash"},
    ],
)
def test_a_proof_that_does_not_verify_is_never_recorded(log, spoil):
    standing = log_proof.check_proof(spoil(log.event_proof(3), log), vkey(log.signer))
    assert standing.status == log_proof.FAILED and standing.reason
    assert not standing.recorded


def test_without_the_logs_key_nothing_is_recorded(log):
    assert log_proof.check_proof(log.event_proof(3), None).status == log_proof.FAILED
    other_log = new_signer("ksmart.test/another")
    assert log_proof.check_proof(log.event_proof(3), vkey(other_log)).status == log_proof.FAILED


# -- the pages -------------------------------------------------------------------------


def _verdict(transparency) -> dict:
    return {
        "found": True,
        "valid": True,
        "problems": [],
        "certificate": {
            "certificate_number": NUMBER,
            "title": {"en": "Birth certificate"},
            "local_body": "KL-EKM-KOC",
            "issued_at": "2026-12-06T10:00:00Z",
            "valid_until": None,
        },
        "transparency": transparency,
    }


def _check_page(log, transparency, language="en") -> tuple[str, object]:
    client, fake = portal(
        {
            ("GET", f"/certificates/{NUMBER}"): (200, _verdict(transparency)),
            ("GET", "/local-bodies/KL-EKM-KOC"): (200, {"name": {"en": "Kochi Corporation"}}),
            ("GET", "/log/key"): (200, vkey(log.signer)),
        }
    )
    if language != "en":
        client.get(f"/language/{language}")
    page = client.get("/certificates", query_string={"number": NUMBER})
    assert page.status_code == 200
    return page.data.decode(), fake


def test_the_certificate_check_shows_a_proof_it_verified_itself(log):
    proof = log.event_proof(3, cosigners=[new_witness_signer()])
    page, fake = _check_page(log, {"certificate": proof})
    assert RECORDED_WITNESSED in page
    assert 'data-status="recorded"' in page
    key_calls = [sent for sent in fake.sent if sent.path_url == "/api/v1/log/key"]
    assert len(key_calls) == 1 and "Authorization" not in key_calls[0].headers


def test_the_certificate_check_says_a_failed_proof_failed(log):
    spoiled = {**log.event_proof(3), "event_hash": log.hashes[5]}
    page, _ = _check_page(log, {"certificate": spoiled})
    assert FAILED in page and "Recorded in the public log" not in page
    assert 'data-status="failed"' in page


def test_the_certificate_check_says_when_the_log_has_not_yet_added_it(log):
    page, fake = _check_page(log, {"certificate": None})
    assert PENDING in page
    assert all(sent.path_url != "/api/v1/log/key" for sent in fake.sent), "nothing to check"
    unknown, _ = _check_page(log, None)
    assert "public log" not in unknown.lower(), "no answer from the log: nothing said"


def test_the_certificate_check_says_it_in_malayalam(log):
    page, _ = _check_page(log, {"certificate": log.event_proof(0)}, language="ml")
    ml = i18n.load_catalogues()["ml"]
    expected = ml.gettext(
        "Recorded in the public log: entry %(index)s of the checkpoint of size %(size)s, "
        "signed by the platform."
    ) % {"index": 0, "size": 7}
    assert expected in page and "പൊതു രേഖ" in expected


def test_a_citizens_file_and_acknowledgement_name_the_checkpoint_of_the_submission(log):
    file = _file(transparency={"submission": log.event_proof(0), "certificate": None})
    client, _ = signed_in(
        {("GET", f"/files/{FILE_ID}"): (200, file), ("GET", "/log/key"): (200, vkey(log.signer))}
    )
    assert RECORDED in client.get(f"/files/{FILE_ID}").data.decode()
    assert RECORDED in client.get(f"/applied/{FILE_ID}").data.decode()

    waiting = _file(transparency={"submission": None, "certificate": None})
    client, _ = signed_in({("GET", f"/files/{FILE_ID}"): (200, waiting)})
    assert PENDING in client.get(f"/files/{FILE_ID}").data.decode()


def test_the_counters_acknowledgement_names_the_checkpoint_too(log):
    filed = {**_filed(), "transparency": {"submission": log.event_proof(0), "certificate": None}}
    client, _ = counter(
        {("GET", f"/files/{FILE_ID}"): (200, filed), ("GET", "/log/key"): (200, vkey(log.signer))}
    )
    assert RECORDED in client.get(f"/counter/files/{FILE_ID}").data.decode()
