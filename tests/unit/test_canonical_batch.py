"""canonical_values: the canonical check of many texts at once, which the
store's reader runs on every fetch (make bench, replay). It must refuse
exactly what parse_canonical refuses, text by text, however the texts are
put together: the batch is one encoding compared with the texts joined."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ksmart_common.canonical import NotCanonical, canonical_text, canonical_values, parse_canonical
from tests.unit.test_stored_text import json_values, texts


def _alone(text: str) -> bool:
    try:
        parse_canonical(text)
    except NotCanonical:
        return False
    return True


def _spellings(value) -> list[str]:
    """The canonical text of a value and other texts that parse alike."""
    return [
        canonical_text(value),
        json.dumps(value, ensure_ascii=False),
        json.dumps(value, sort_keys=True, separators=(",", ":")),
        " " + canonical_text(value),
        canonical_text(value) + " ",
    ]


spelled = st.builds(lambda value, pick: _spellings(value)[pick], json_values, st.integers(0, 4))
# Fragments as a forger might cut them, so that texts joined would read as
# other values: unbalanced quotes and brackets, commas, halves of escapes.
fragments = st.lists(
    st.sampled_from(['"', "{", "}", "[", "]", ",", ":", '\\"', '"a', "1", "},{", '{"k":"']),
    max_size=6,
).map("".join)


@settings(max_examples=400)
@given(st.lists(st.builds(canonical_text, json_values) | spelled | fragments | texts, max_size=8))
def test_a_batch_is_canonical_exactly_when_each_text_is(batch):
    values = canonical_values(batch)
    if all(_alone(text) for text in batch):
        assert values == [parse_canonical(text) for text in batch]
    else:
        assert values is None


def test_texts_that_join_into_a_canonical_array_are_refused():
    # Joined: '[{"a":1},{"b":2},{"k":"},{"}]', canonical and of three values.
    forged = ['{"a":1},{"b":2}', '{"k":"}', '{"}']
    assert canonical_text(json.loads("[" + ",".join(forged) + "]")) == "[" + ",".join(forged) + "]"
    assert canonical_values(forged) is None
    assert canonical_values(['{"a":1}', '{"b":2}', '{"k":"},{"}']) is not None


def test_each_refusal_of_one_text_alone_is_refused_in_a_batch():
    good = canonical_text({"a": [1, "ജനനം"]})
    for bad in ('{"a":1,"a":1}', '{"a":1.00}', '{"a":NaN}', '{"a": 1}', "", "1 2", '"\\ud800"'):
        assert canonical_values([good, bad, good]) is None
    assert canonical_values([good, good]) == [{"a": [1, "ജനനം"]}] * 2
    assert canonical_values([]) == []
