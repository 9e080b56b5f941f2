"""Signed events: the writer's signature over each event's hash, carried in
the envelope and the audit export, and the auditor's check of it against
the root-endorsed event keys (legacy unsigned events only before the first
signed one)."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ksmart_audit.event_signature_checks import (
    MIS_SIGNED,
    UNSIGNED,
    SignatureChecker,
    endorsed_event_keys,
)
from ksmart_common import ed25519
from ksmart_common.appender import AppendRequest, seal
from ksmart_common.canonical import GENESIS_HASH
from ksmart_common.envelope import (
    NewEvent,
    StoredEvent,
    from_json,
    read_document,
    to_document,
    to_json,
    verify_chain,
)
from ksmart_common.event_signatures import EventSigner, parse, why_not_signed
from ksmart_common.key_anchor import CERTIFICATE, EVENT, KeyAnchor, endorse
from ksmart_common.keystore import SigningKey

META = {"actor_id": "clerk-1", "actor_roles": ["clerk"], "correlation_id": "c-1"}
NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
SIGNER = EventSigner.of(ed25519.generate_private_key())
KEYS = {SIGNER.kid: SIGNER.private_key.public_key()}


def log(*signers, stream="file-a"):
    """One event per signer (None: unsigned), sealed as the store seals
    them, in one stream at positions 1, 2, ..."""
    events, prev = [], GENESIS_HASH
    for index, signer in enumerate(signers):
        request = AppendRequest(stream, [NewEvent("FileVerified", {"n": index})], None, META)
        request.signer = signer
        ((envelope, _, _),) = seal(request, index, prev, index, NOW)
        events.append(envelope)
        prev = envelope.hash
    return events


def check(events, keys=KEYS, whole_log=True):
    checker = SignatureChecker(keys, whole_log=whole_log)
    for envelope in events:
        checker.check(StoredEvent.of(envelope))
    return checker, list(checker.finish())


def test_the_store_signs_each_events_hash_with_its_key_id():
    events = log(SIGNER, SIGNER)
    for envelope in events:
        kid, _ = parse(envelope.signature)
        assert kid == SIGNER.kid == ed25519.key_id(SIGNER.private_key.public_key())
        assert why_not_signed(envelope.signature, envelope.hash, KEYS) is None
    # The signature is outside what the hash covers: the chain verifies.
    assert verify_chain(events) == []


@given(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_a_signature_covers_its_hash_alone(other_hash):
    event_hash = "ab" * 32
    signature = SIGNER.sign(event_hash)
    assert why_not_signed(signature, event_hash, KEYS) is None
    if other_hash != event_hash:
        assert "mis-signed" in why_not_signed(signature, other_hash, KEYS)


@pytest.mark.parametrize(
    ("signature", "why"),
    [
        (None, "no signature"),
        ("no colon", "malformed"),
        ("abc:not base64!", "malformed"),
        (f"{SIGNER.kid}:AAAA", "malformed"),
        ("0123456789abcdef:" + "A" * 86, "not an endorsed event key"),
    ],
)
def test_what_is_not_a_signature_is_named(signature, why):
    assert why in why_not_signed(signature, "ab" * 32, KEYS)


def test_the_envelope_and_the_export_carry_the_signature():
    (envelope,) = log(SIGNER)
    assert from_json(to_json(envelope)) == envelope
    event, differing = read_document(to_document(StoredEvent.of(envelope)))
    assert event.envelope.signature == envelope.signature and differing == []
    # Unsigned (legacy) events read as they always did.
    (legacy,) = log(None)
    document = to_document(StoredEvent.of(legacy))
    del document["signature"]  # an export made before events were signed
    assert read_document(document)[0].envelope.signature is None


def test_a_canonical_text_holding_a_signature_is_refused():
    (envelope,) = log(SIGNER)
    document = to_document(StoredEvent.of(envelope))
    document["canonical"] = document["canonical"][:-1] + ',"signature":"x"}'
    with pytest.raises(ValueError, match="signature"):
        read_document(document)


def test_legacy_events_before_the_first_signed_one_are_counted_not_found():
    checker, found = check(log(None, None, SIGNER, SIGNER))
    assert found == []
    assert (checker.legacy, checker.signed, checker.first_signed) == (2, 2, 3)
    assert "2 legacy, unsigned" in checker.notes()[0]


def test_an_unsigned_event_after_the_first_signed_one_is_found_by_name():
    events = log(None, SIGNER, None, SIGNER)
    _, found = check(events)
    assert [(p.kind, p.stream_id, p.version, p.position) for p in found] == [
        (UNSIGNED, "file-a", 3, 3)
    ]
    assert "from global position 2 on" in found[0].message


def test_a_signature_moved_to_a_forged_event_or_by_another_key_is_found():
    events = log(SIGNER, SIGNER, SIGNER)
    intruder = EventSigner.of(ed25519.generate_private_key())
    events[1] = replace(events[1], signature=events[0].signature)  # copied from another event
    events[2] = replace(events[2], signature=intruder.sign(events[2].hash))
    _, found = check(events)
    assert [(p.kind, p.version) for p in found] == [(MIS_SIGNED, 2), (MIS_SIGNED, 3)]
    assert "does not verify" in found[0].message
    assert "not an endorsed event key" in found[1].message


def test_only_keys_the_root_endorses_for_events_are_believed():
    root = ed25519.generate_private_key()
    anchor = KeyAnchor(root.public_key())
    endorsed = SigningKey.from_private_key(SIGNER.private_key).public_jwk
    other = SigningKey.generate()
    for_certificates = SigningKey.generate().public_jwk
    jwks = {
        "keys": [
            {**endorsed, "endorsement": endorse(root, EVENT, endorsed)},
            other.public_jwk,  # a row an insider inserted: no endorsement
            {**for_certificates, "endorsement": endorse(root, CERTIFICATE, for_certificates)},
        ]
    }
    assert set(endorsed_event_keys(jwks, anchor)) == {SIGNER.kid}
    forged = log(EventSigner(other.kid, other.private_key))
    _, found = check(forged, endorsed_event_keys(jwks, anchor))
    assert [p.kind for p in found] == [MIS_SIGNED]


def test_a_partial_read_says_it_cannot_tell_legacy_from_forged():
    checker, found = check(log(None), whole_log=False)
    assert found == [] and "only the whole log's check" in checker.notes()[0]
