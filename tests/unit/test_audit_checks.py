"""The auditor's checks on hand-built envelopes: what an untouched log looks
like, and how an altered, a deleted and two reordered events are found."""

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ksmart_audit import cli
from ksmart_audit.checks import (
    ALTERED,
    BROKEN_LINK,
    DIFFERENT,
    FOREIGN,
    INVALID,
    MISSING,
    POSITION_GAP,
    POSITION_ORDER,
    REORDERED,
    ChainChecker,
    Findings,
    Problem,
    compare_views,
)
from ksmart_audit.report import format_problem
from ksmart_common.envelope import Envelope, NewEvent, StoredEvent, to_document
from tests.support.memory_store import InMemoryEventStore

META = {"actor_id": "clerk-1", "actor_roles": ["clerk"], "correlation_id": "c-1"}
START = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
A, B, C = "file-a", "file-b", "file-c"


def build_log(plan: list[str]) -> list[Envelope]:
    """Events in global-position order, each stream's chain sealed as the
    store seals it; `plan` names the stream of each position."""
    store = InMemoryEventStore(clock=START, tick=timedelta(seconds=1))
    for position, stream in enumerate(plan, start=1):
        store.append(stream, [NewEvent("FileVerified", {"step": position})], metadata=META)
    return store.log


PLAN = [A, B, A, C, A, B, A, C]  # A: v1..v4 at positions 1, 3, 5, 7


def problems(events, **how) -> list[Problem]:
    checker = ChainChecker(**how)
    for envelope in events:
        checker.check(StoredEvent.of(envelope))
    return list(checker.finish())


def kinds(found: list[Problem]) -> list[tuple[str, str | None, int | None]]:
    return [(problem.kind, problem.stream_id, problem.version) for problem in found]


def at(log, stream, version) -> int:
    return next(
        i for i, e in enumerate(log) if (e.stream_id, e.stream_version) == (stream, version)
    )


def of_stream(log, stream):
    return [envelope for envelope in log if envelope.stream_id == stream]


def test_an_untouched_log_verifies_whole_by_stream_and_read_back():
    log = build_log(PLAN)
    assert problems(log, after=0) == []
    assert problems(log) == []  # read back, kind unknown
    for stream in (A, B, C):
        assert problems(of_stream(log, stream), stream_id=stream) == []
        assert problems(of_stream(log, stream)) == []


def test_an_altered_event_is_one_problem_naming_its_stream_and_version():
    log = build_log(PLAN)
    index = at(log, A, 2)
    log[index] = replace(log[index], data={"step": 999})
    found = problems(log, after=0)
    assert kinds(found) == [(ALTERED, A, 2)]
    assert found[0].position == log[index].global_position
    assert found[0].expected.startswith(log[index].hash)
    assert str(found[0]).startswith(f"{A} v2 (global position 3): hash does not match")
    # Read as the file's own export, the same single problem.
    assert kinds(problems(of_stream(log, A), stream_id=A)) == [(ALTERED, A, 2)]


def test_altered_metadata_or_time_is_found_too():
    log = build_log(PLAN)
    index = at(log, B, 2)
    log[index] = replace(log[index], metadata={**META, "actor_id": "someone-else"})
    assert kinds(problems(log, after=0)) == [(ALTERED, B, 2)]
    log = build_log(PLAN)
    index = at(log, C, 1)
    log[index] = replace(log[index], recorded_at=log[index].recorded_at + timedelta(hours=1))
    assert kinds(problems(log, after=0)) == [(ALTERED, C, 1)]


def test_a_deleted_event_leaves_a_position_gap_a_version_gap_and_a_broken_link():
    log = build_log(PLAN)
    deleted = log.pop(at(log, A, 2))  # position 3
    found = problems(log, after=0)
    assert kinds(found) == [(POSITION_GAP, None, None), (MISSING, A, 3), (BROKEN_LINK, A, 3)]
    gap = found[0]
    assert gap.position == deleted.global_position
    assert "position 3 is missing" in gap.message and f"{C} v1" in gap.message
    assert found[1].expected == "version 2" and found[1].found == "version 3"
    assert found[2].found == deleted.hash  # it still links to the deleted one

    # In the file's own export positions jump anyway: the chain shows it.
    assert kinds(problems(of_stream(log, A), stream_id=A)) == [(MISSING, A, 3), (BROKEN_LINK, A, 3)]


def test_a_deleted_last_event_of_a_stream_shows_in_the_log_positions():
    log = build_log(PLAN)
    del log[at(log, B, 2)]  # position 6: B's chain alone still verifies
    assert problems(of_stream(log, B), stream_id=B) == []
    assert kinds(problems(log, after=0)) == [(POSITION_GAP, None, None)]


def test_a_deleted_first_event_shows_as_a_stream_that_starts_late():
    log = build_log(PLAN)
    del log[at(log, C, 1)]
    assert kinds(problems(of_stream(log, C), stream_id=C)) == [(MISSING, C, 2)]
    assert (MISSING, C, 2) in kinds(problems(log, after=0))


def swap_versions(log, stream, first, second):
    """What a superuser's UPDATE does: the rows keep their positions and
    exchange their stream versions."""
    i, j = at(log, stream, first), at(log, stream, second)
    log[i], log[j] = (
        replace(log[i], stream_version=second),
        replace(log[j], stream_version=first),
    )
    return log


def test_two_reordered_events_are_found_and_recognised_as_renumbered():
    log = swap_versions(build_log(PLAN), A, 2, 3)
    found = problems(log, after=0)
    assert (MISSING, A, 3) in kinds(found)  # v3 read where v2 belongs
    assert (REORDERED, A, 2) in kinds(found)  # v2 read after v3
    renumbered = [p.message for p in found if "renumbered" in p.message]
    assert any("from v2 to v3" in message for message in renumbered)
    assert any("from v3 to v2" in message for message in renumbered)

    # The file's export comes in version order: links and positions break.
    in_version_order = sorted(of_stream(log, A), key=lambda e: e.stream_version)
    found = problems(in_version_order, stream_id=A)
    assert (BROKEN_LINK, A, 2) in kinds(found) and (BROKEN_LINK, A, 3) in kinds(found)
    assert (POSITION_ORDER, A, 3) in kinds(found)
    assert {p.kind for p in found if "renumbered" in p.message} == {REORDERED}


def test_a_repeated_event_is_out_of_order():
    log = build_log(PLAN)
    repeated = log[:5] + [log[4]] + log[5:]
    found = kinds(problems(repeated, after=0))
    assert (POSITION_ORDER, A, 3) in found and (REORDERED, A, 3) in found


def test_a_first_event_must_link_to_genesis():
    log = build_log([A, A])
    forged = replace(log[0], prev_hash="f" * 64).with_hash()
    second = replace(log[1], prev_hash=forged.hash).with_hash()
    assert kinds(problems([forged, second], stream_id=A)) == [(BROKEN_LINK, A, 1)]


def test_a_range_after_a_position_lets_streams_continue_and_checks_its_start():
    log = build_log(PLAN)
    checker = ChainChecker(after=4)
    for envelope in log[4:]:
        checker.check(StoredEvent.of(envelope))
    assert list(checker.finish()) == []
    assert checker.continued == 3
    assert "began before the range" in checker.summary()
    # The range must start right after the position asked for.
    assert kinds(problems(log[5:], after=4)) == [(POSITION_GAP, None, None)]
    # From the start, a stream that does not begin at version 1 is a problem.
    assert (MISSING, A, 3) in kinds(problems(log[4:], after=0))


def test_an_export_read_back_is_a_file_or_the_log_by_what_it_holds():
    log = build_log(PLAN)
    assert problems(of_stream(log, A)) == []  # one stream: its positions may jump
    del log[at(log, B, 1)]
    assert (POSITION_GAP, None, None) in kinds(problems(log))


def test_an_event_of_another_stream_is_refused_in_a_stream_read():
    log = build_log(PLAN)
    found = problems([*of_stream(log, A)[:2], log[at(log, B, 2)]], stream_id=A)
    assert kinds(found) == [(FOREIGN, B, 2)]


def test_findings_keep_the_first_problems_and_count_all():
    findings = Findings(keep=2)
    for version in range(1, 6):
        findings.add(Problem(ALTERED, "x", A, version))
    assert findings.count == 5 and [p.version for p in findings] == [1, 2]


def test_an_invalid_entry_is_named_by_what_it_carries():
    checker = ChainChecker(after=0)
    checker.invalid("line 3 is not a valid envelope", {"stream_id": A, "stream_version": 2})
    (problem,) = checker.finish()
    assert (problem.kind, problem.stream_id, problem.version) == (INVALID, A, 2)


def test_a_problem_is_reported_with_where_what_expected_and_found():
    text = format_problem(1, Problem(MISSING, "versions gone", A, 3, 7, "version 2", "version 3"))
    assert "1. file-a v3 (global position 7)  [missing]" in text
    assert "expected: version 2" in text and "found:    version 3" in text


def test_compare_views_names_every_differing_field():
    replayed = {
        "state": "approved",
        "version": 3,
        "timeline": [{"to_state": "submitted"}, {"to_state": "approved"}],
        "form": {"name": "Anu"},
        "refund_due_paise": 0,
    }
    assert compare_views(
        replayed, {k: v for k, v in replayed.items() if k != "refund_due_paise"}
    ) == (
        [],
        ["refund_due_paise"],
    )
    shown = {
        "state": "rejected",
        "version": 3,
        "timeline": [{"to_state": "submitted"}, {"to_state": "rejected"}, {"to_state": "x"}],
        "form": {"name": "Anu", "extra": 1},
        "shown_only": True,
    }
    found, not_shown = compare_views(replayed, shown, A)
    fields = {problem.message.split(":")[0]: problem for problem in found}
    assert set(fields) == {
        "state",
        "timeline[1].to_state",
        "timeline[2]",
        "form.extra",
        "shown_only",
    }
    assert (fields["state"].expected, fields["state"].found) == ("approved", "rejected")
    assert all(p.kind == DIFFERENT and p.stream_id == A and p.version == 3 for p in found)
    assert not_shown == ["refund_due_paise"]
    # A number is not a string nor a boolean, however it prints.
    assert compare_views({"paid": 1}, {"paid": True})[0]


# -- the command on an export, in process ------------------------------------------


def write_export(path, log):
    path.write_text(
        "".join(json.dumps(to_document(StoredEvent.of(e)), ensure_ascii=False) + "\n" for e in log),
        encoding="utf-8",
    )
    return str(path)


def test_verify_input_exits_0_when_it_verifies_and_1_with_the_report(tmp_path, capsys):
    log = build_log(PLAN)
    assert cli.main(["verify", "--input", write_export(tmp_path / "good.jsonl", log)]) == 0
    assert "VERIFIED" in capsys.readouterr().err

    index = at(log, A, 2)
    log[index] = replace(log[index], data={"step": "forged"})
    assert (
        cli.main(["verify", "--quiet", "--input", write_export(tmp_path / "bad.jsonl", log)]) == 1
    )
    report = capsys.readouterr().err
    assert "1 DIFFERENCE FOUND" in report and f"{A} v2 (global position 3)" in report


def test_verify_input_reports_lines_that_are_no_envelopes(tmp_path, capsys):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"stream_id": "file-a"}\nnot json\n', encoding="utf-8")
    assert cli.main(["verify", "--quiet", "--input", str(path)]) == 1
    report = capsys.readouterr().err
    assert "line 1 is not a valid envelope" in report and "line 2 is not JSON" in report


@pytest.mark.parametrize(
    "argv",
    [
        ["verify"],  # no source
        ["verify", "--gateway", "http://x", "--database-url", "postgresql://x/y"],
        ["export", "--after", "0", "--database-url", "postgresql://x/y", "--gateway", "http://x"],
        ["as-of", "--file", str(uuid.UUID(int=1)), "--at", "2026-11-29T09:00:00"],  # no zone
        ["replay", "--file", "not-a-uuid", "--gateway", "http://127.0.0.1:9"],
        ["verify", "--input", "/nonexistent/export.jsonl"],
    ],
)
def test_usage_errors_exit_2(argv, capsys, monkeypatch):
    for name in ("KSMART_AUDIT_GATEWAY", "KSMART_AUDIT_DATABASE_URL", "KSMART_AUDIT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(argv) == 2
    assert "ksmart-audit" in capsys.readouterr().err


def test_a_gateway_without_a_token_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.delenv("KSMART_AUDIT_TOKEN", raising=False)
    assert cli.main(["verify", "--gateway", "http://127.0.0.1:9"]) == 2
    assert "KSMART_AUDIT_TOKEN" in capsys.readouterr().err
