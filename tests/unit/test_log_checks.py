"""The auditor's checks of the transparency log (ksmart_audit.log_checks),
against a log in memory: the checkpoint must be the pinned log's and
cosigned by a quorum of trusted witnesses; it must extend the one seen last
time; and the tree recomputed from the events must have its root. Every
tampering the per-file chains cannot see is found and located: the newest
events deleted, an event replaced or inserted, one deleted from the middle,
the log rewritten; an event added later and dated back is named."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ksmart_audit.log_checks import (
    BLOCK,
    CHECKPOINT,
    FORKED,
    ROLLED_BACK,
    ROOT,
    TRUNCATED,
    CheckpointRefused,
    Leaf,
    Moment,
    SeenCheckpoint,
    TreeChecker,
    check_against_seen,
    open_checkpoint,
)
from tests.support.fake_log import FakeLog, new_witness_signer, stored_hashes

T0 = 1_770_000_000.0


def _leaves(hashes, first_position=1):
    return [
        Leaf(h, f"file-{i}", 1, first_position + i, datetime.fromtimestamp(T0 + i, UTC))
        for i, h in enumerate(hashes)
    ]


def _check(log: FakeLog, size: int, events: list[Leaf], moments=()):
    """Feed the events to a checker of the log's checkpoint of `size`."""
    tree = TreeChecker(log.checkpoint(size), moments)
    for leaf in events:
        tree.add(leaf)

    def reread(after, count):
        start = (
            0 if after is None else next(i for i, e in enumerate(events) if e.position == after) + 1
        )
        return events[start : start + count]

    return tree, list(tree.finish(log.consistency, reread))


# -- the checkpoint --------------------------------------------------------------


def test_a_checkpoint_needs_the_pinned_log_key_and_a_quorum_of_witnesses():
    log = FakeLog()
    log.append(5)
    first, second = new_witness_signer("w1.test/w"), new_witness_signer("w2.test/w")
    witnesses = [first.verifier, second.verifier]
    both = log.note(cosigners=[first, second], at=int(T0))
    opened = open_checkpoint(both, log.signer.verifier, witnesses, 2)
    assert opened.checkpoint.size == 5
    assert {w.vkey() for w in opened.witnesses} == {w.vkey() for w in witnesses}
    assert {moment.by for moment in opened.moments()} == {"witness w1.test/w", "witness w2.test/w"}

    one = log.note(cosigners=[first], at=int(T0))
    assert open_checkpoint(one, log.signer.verifier, witnesses, 1).witnesses == (first.verifier,)
    with pytest.raises(CheckpointRefused) as refused:
        open_checkpoint(one, log.signer.verifier, witnesses, 2)
    assert refused.value.problem.kind == CHECKPOINT and "w2.test/w" in refused.value.problem.found

    impostor = FakeLog(log.hashes)  # same origin, another key
    with pytest.raises(CheckpointRefused, match="pinned key|no trusted key"):
        open_checkpoint(impostor.note(cosigners=[first]), log.signer.verifier, witnesses, 0)
    with pytest.raises(CheckpointRefused, match="does not verify"):
        open_checkpoint(both.replace("\n5\n", "\n4\n"), log.signer.verifier, witnesses, 0)


def _seen(log, size):
    return SeenCheckpoint(log.origin, size, log.checkpoint(size).root_hash, log.note(size), T0)


def test_the_newest_checkpoint_must_extend_the_one_seen_last_time():
    log = FakeLog()
    log.append(20)
    assert check_against_seen(None, log.checkpoint(), log.consistency) is None
    assert check_against_seen(_seen(log, 7), log.checkpoint(), log.consistency) is None
    assert check_against_seen(_seen(log, 20), log.checkpoint(), log.consistency) is None

    rolled_back = check_against_seen(_seen(log, 20), log.checkpoint(15), log.consistency)
    assert rolled_back.kind == ROLLED_BACK and rolled_back.found == 15

    rewritten = FakeLog(log.hashes[:3] + stored_hashes(17), signer=log.signer)
    same_size = check_against_seen(_seen(log, 20), rewritten.checkpoint(), rewritten.consistency)
    assert same_size.kind == FORKED and "two different roots" in same_size.message
    grown = check_against_seen(_seen(log, 7), rewritten.checkpoint(), rewritten.consistency)
    assert grown.kind == FORKED and "does not extend" in grown.message


# -- the tree from the events ------------------------------------------------------


def test_an_untouched_log_has_the_checkpoint_root_and_newer_events_wait():
    log = FakeLog()
    log.append(300)
    tree, problems = _check(log, 290, _leaves(log.hashes))
    assert problems == [] and tree.root_matches and tree.beyond == 10
    assert "10 newer events beyond it" in tree.summary()


def test_the_newest_events_deleted_are_found():
    log = FakeLog()
    log.append(12)
    events = _leaves(log.hashes)[:9]
    _, problems = _check(log, 12, events)
    assert [p.kind for p in problems] == [TRUNCATED]
    assert "leaf indices 9 to 11 are missing" in problems[0].message
    assert problems[0].position == 9  # the last event there is


@settings(max_examples=30, deadline=None)
@given(
    size=st.integers(1, 2 * BLOCK + 40),
    data=st.data(),
    how=st.sampled_from(["replaced", "inserted", "deleted"]),
)
def test_a_changed_checkpointed_event_is_located(size, data, how):
    log = FakeLog()
    log.append(size + 3)
    index = data.draw(st.integers(0, size - 1))
    hashes = list(log.hashes)
    forged = stored_hashes(1)[0]
    if how == "replaced":
        hashes[index] = forged
    elif how == "inserted":
        hashes.insert(index, forged)
    else:
        del hashes[index]
    events = _leaves(hashes)
    _, problems = _check(log, size, events)
    if how == "deleted" and index == size - 1 and len(hashes) < size:
        pytest.skip("unreachable: three more leaves follow")
    assert [p.kind for p in problems] == [ROOT], problems
    assert problems[0].message.startswith(f"leaf {index:,} is the first event that differs")
    assert problems[0].position == events[index].position


def test_a_log_rewritten_whole_has_another_root_from_its_first_leaf():
    log = FakeLog()
    log.append(40)
    rewritten = _leaves(stored_hashes(40))
    _, problems = _check(log, 40, rewritten)
    assert [p.kind for p in problems] == [ROOT]
    assert problems[0].message.startswith("leaf 0 is the first")


def test_an_event_added_later_and_dated_back_is_named():
    log = FakeLog()
    log.append(20)
    events = _leaves(log.hashes)
    # Seen at size 15 just after its 15th event; the event at index 17 says
    # it was recorded an hour before that.
    seen = Moment(15, T0 + 14.5, "this auditor")
    events[17] = Leaf(log.hashes[17], "file-x", 3, 18, datetime.fromtimestamp(T0 - 3600, UTC))
    _, problems = _check(log, 20, events, [seen])
    assert [(p.kind, p.position) for p in problems] == [("not in the log when seen", 18)]
    assert "held only 15 leaves when this auditor saw it" in problems[0].message
    # Recorded within the merge delay of the moment: not a finding.
    events[17] = Leaf(log.hashes[17], "file-x", 3, 18, datetime.fromtimestamp(T0 - 200, UTC))
    assert _check(log, 20, events, [seen])[1] == []
