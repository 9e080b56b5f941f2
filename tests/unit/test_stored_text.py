"""Verification hashes the text as stored (issue 18, item 5): the canonical
check (parse, encode again, compare byte for byte), the stored event whose
hash is taken over its row's own text, and the export's `canonical` field.

Every rewriting below parses to the same values as the text that was sealed
(or, for `1.0`, to the same number as most JSON readers see it): a verifier
that hashed a re-encoding of the parsed values would pass them all."""

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from ksmart_audit.checks import ALTERED, INVALID, NOT_AS_HASHED, NOT_CANONICAL, ChainChecker
from ksmart_common.appender import AppendRequest, seal
from ksmart_common.canonical import (
    GENESIS_HASH,
    DuplicateKey,
    NotCanonical,
    canonical_text,
    parse_canonical,
)
from ksmart_common.envelope import (
    CANONICAL_KEY,
    NewEvent,
    StoredEvent,
    read_document,
    to_document,
    verify_chain,
)

# Text without lone surrogates: PostgreSQL and UTF-8 hold no such thing.
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=16,
)
META = {"actor_id": "clerk-1", "actor_roles": ["clerk"], "correlation_id": "c-1"}


# -- the canonical check -----------------------------------------------------------


@given(json_values)
def test_the_canonical_text_of_any_json_value_round_trips(value):
    text = canonical_text(value)
    parsed = parse_canonical(text)
    assert canonical_text(parsed) == text


@given(st.dictionaries(texts, json_values, min_size=1, max_size=5), st.data())
def test_any_other_encoding_of_the_same_value_is_refused(value, data):
    canonical = canonical_text(value)
    variants = {
        json.dumps(value, ensure_ascii=False),  # spaces after , and :
        json.dumps(value, sort_keys=True, separators=(",", ":")),  # \u-escaped
        json.dumps(value, sort_keys=True, ensure_ascii=False, indent=1),
        json.dumps(
            dict(reversed(sorted(value.items()))), ensure_ascii=False, separators=(",", ":")
        ),
    }
    key = data.draw(st.sampled_from(sorted(value)))
    # The key written twice, its first value overridden: it parses to `value`.
    variants.add("{" + json.dumps(key, ensure_ascii=False) + ':"x",' + canonical[1:])
    for variant in variants - {canonical}:
        assert json.loads(variant) == value
        with pytest.raises(NotCanonical):
            parse_canonical(variant)


@pytest.mark.parametrize(
    "text, why",
    [
        ('{"a":1,"a":1}', "the key 'a' appears twice"),
        ('{"a":1.00}', "character 8"),
        ('{"a":1e0}', "character 6"),
        ('{"a":-0}', "character 5"),
        ('{"a":"\\u0061"}', "character 6"),
        ('{"a": 1}', "character 5"),
        ('{"b":1,"a":2}', "character 2"),
        ('{"a":NaN}', "NaN"),
        ('{"a":', "not JSON"),
    ],
)
def test_each_other_spelling_is_refused_saying_why(text, why):
    with pytest.raises(NotCanonical) as refused:
        parse_canonical(text)
    assert why in str(refused.value)


def test_a_duplicate_key_deep_inside_is_named():
    with pytest.raises(DuplicateKey) as refused:
        parse_canonical('{"a":[{"b":1,"b":2}]}')
    assert refused.value.key == "b"


def test_one_point_zero_is_a_float_of_its_own_and_canonical_as_such():
    assert parse_canonical('{"a":1.0}') == {"a": 1.0}
    assert parse_canonical('{"a":1}') == {"a": 1}


# -- an event as stored --------------------------------------------------------------


def _sealed(data: dict) -> tuple[StoredEvent, str, str]:
    """An event sealed as the appender seals it: the stored event made from
    the texts the appender writes into the row, and those texts."""
    request = AppendRequest("file-1", [NewEvent("FileVerified", data)], 0, META)
    ((envelope, data_text, metadata_text),) = seal(
        request, 0, GENESIS_HASH, 0, datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    )
    return StoredEvent.from_row(envelope, data_text, metadata_text), data_text, metadata_text


DATA = {"amount": 1, "remarks": "ok അ", "items": [{"n": 2}]}


def test_an_event_as_the_appender_stored_it_verifies_by_its_own_text():
    stored, data_text, _ = _sealed(DATA)
    assert data_text == canonical_text(DATA)
    assert stored.hash_is_valid() and stored.not_canonical() is None
    assert stored.recomputed_hash() == stored.envelope.hash
    assert verify_chain([stored]) == []


REWRITINGS = [
    ('"amount":1,', '"amount":1,"amount":1,', "appears twice"),
    ('"amount":1,', '"amount":1.0,', None),  # a float of its own: canonical, but not sealed
    ('"ok അ"', '"\\u006fk \\u0d05"', "character"),
    ('"items":', '"items": ', "character"),
]


@pytest.mark.parametrize("sealed_part, rewritten, why", REWRITINGS)
def test_a_rewritten_row_text_is_found_though_it_parses_alike(sealed_part, rewritten, why):
    stored, data_text, metadata_text = _sealed(DATA)
    assert sealed_part in data_text
    tampered_text = data_text.replace(sealed_part, rewritten)
    envelope = replace(stored.envelope, data=json.loads(tampered_text))
    assert envelope.data == DATA  # what a re-encoding verifier would have hashed
    tampered = StoredEvent.from_row(envelope, tampered_text, metadata_text)
    assert not tampered.hash_is_valid()
    reason = tampered.not_canonical()
    assert (reason is None) if why is None else (why in reason)
    problems = verify_chain([tampered])
    assert "file-1 v1: hash does not match the event's content (altered)" in problems


def test_a_forgery_sealed_over_a_text_no_one_can_reproduce_is_not_canonical():
    """Its hash is right for its bytes, but those bytes are not the
    canonical text of what they say: a second verifier could not agree."""
    stored, data_text, metadata_text = _sealed(DATA)
    odd_text = data_text.replace('"items":', '"items": ')
    forged = StoredEvent.from_row(stored.envelope, odd_text, metadata_text)
    forged = replace(forged, envelope=replace(forged.envelope, hash=forged.recomputed_hash()))
    assert forged.hash_is_valid()
    (problem,) = verify_chain([forged])
    assert problem.startswith("file-1 v1: the stored text is not canonical JSON (at character")
    assert '"items": [' in problem and '"items":[' in problem


# -- the export's `canonical` field --------------------------------------------------


def test_an_export_carries_the_stored_text_and_reads_back_as_the_same_event():
    stored, _, _ = _sealed(DATA)
    document = json.loads(json.dumps(to_document(stored)))  # as sent and read back
    assert document[CANONICAL_KEY] == stored.text
    again, shown_otherwise = read_document(document)
    assert again == stored and shown_otherwise == []


def test_an_export_whose_fields_say_otherwise_than_its_text_is_named():
    stored, _, _ = _sealed(DATA)
    document = to_document(stored)
    document["data"] = {**DATA, "amount": 1.0}  # equal in Python, not as JSON
    event, shown_otherwise = read_document(document)
    assert shown_otherwise == ["data"] and event.envelope.data == DATA


def test_an_export_without_its_text_is_no_event():
    stored, _, _ = _sealed(DATA)
    document = to_document(stored)
    del document[CANONICAL_KEY]
    with pytest.raises(ValueError, match="carries no `canonical` text"):
        read_document(document)
    with pytest.raises(ValidationError):
        read_document({**to_document(stored), CANONICAL_KEY: '{"data":{}}'})


def test_the_auditors_checker_names_each_kind_of_rewriting():
    stored, data_text, metadata_text = _sealed(DATA)
    checker = ChainChecker(stream_id="file-1")
    rewritten = data_text.replace('"amount":1,', '"amount":1,"amount":1,')
    tampered = StoredEvent.from_row(
        replace(stored.envelope, data=json.loads(rewritten)), rewritten, metadata_text
    )
    assert checker.check_document(to_document(tampered)) is not None
    found = {problem.kind for problem in checker.finish()}
    assert found == {ALTERED, NOT_CANONICAL}

    checker = ChainChecker(stream_id="file-1")
    shown = {**to_document(stored), "data": {"amount": 2}}
    checker.check_document(shown)
    assert [problem.kind for problem in checker.finish()] == [NOT_AS_HASHED]

    checker = ChainChecker(stream_id="file-1")
    bare = {key: value for key, value in to_document(stored).items() if key != CANONICAL_KEY}
    assert checker.check_document(bare, "line 1") is None
    (problem,) = checker.finish()
    assert problem.kind == INVALID and "carries no `canonical` text" in problem.message


def test_a_log_sealed_before_verifies_unchanged_from_its_stored_text():
    """The hand-written known answer (tests/unit/test_envelope.py): the
    row's texts cut out of it, not encoded again, give the same hash."""
    from tests.unit.test_envelope import KNOWN_FIRST, KNOWN_FIRST_HASH, KNOWN_FIRST_TEXT

    def between(start: str, end: str) -> str:
        at = KNOWN_FIRST_TEXT.index(start) + len(start)
        return KNOWN_FIRST_TEXT[at : KNOWN_FIRST_TEXT.index(end, at)]

    stored = StoredEvent.from_row(
        replace(KNOWN_FIRST, hash=KNOWN_FIRST_HASH),
        between('{"data":', ',"event_id"'),
        between('"metadata":', ',"prev_hash"'),
    )
    assert stored.text == KNOWN_FIRST_TEXT
    assert stored.recomputed_hash() == KNOWN_FIRST_HASH and stored.not_canonical() is None
