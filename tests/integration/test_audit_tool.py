"""The auditor's tool, ksmart-audit, run as a command against the whole
platform: over the gateway with an auditor's token (as from another
machine), and straight from the applications database (read-only, with the
relay's SELECT-only role). An untouched store verifies; an event altered,
deleted or reordered behind the platform's back by a PostgreSQL superuser
is found and named.

Each tampering case works on a file of its own and puts the rows back as
they were afterwards, so the cases neither mix nor depend on their order."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from datetime import datetime

import pytest
import requests
import sqlalchemy as sa

from tests.support import actions, audit_alone, citizen
from tests.support.platform import running_platform
from tests.support.tampering import events_unguarded

AUDIT = [sys.executable, "-m", "ksmart_audit.cli"]
STREAM_NAMED = re.compile(r"file-[0-9a-f-]{36}")


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("platform")) as running:
        yield running


def _file(platform, *steps):
    """A new file taken through (user, action, remarks) steps; its id."""
    reply = citizen.submit(platform, citizen.application(platform))
    assert reply.status_code == 201, reply.text
    file_id = reply.json()["file_id"]
    # Each decision is its own request, so its recorded_at (microseconds)
    # is a later moment than the one before: as-of has moments between them.
    for version, (user, action, remarks) in enumerate(steps, start=1):
        actions.take(platform, user, file_id, action, remarks=remarks, version=version)
    return file_id


VERIFY = ("clerk.kochi", "verify", None)
APPROVE = ("secretary.kochi", "approve", None)


@pytest.fixture(scope="module")
def files(platform):
    return {
        "returned_and_approved": _file(
            platform,
            ("clerk.kochi", "return_for_clarification", "Attach the discharge summary"),
            ("citizen", "resubmit", "Attached"),
            VERIFY,
            APPROVE,
        ),
        "pending": _file(platform),
        "rejected": _file(platform, VERIFY, ("secretary.kochi", "reject", "Not eligible")),
        "timed": _file(platform, VERIFY, APPROVE),
        "to_alter": _file(platform, VERIFY, APPROVE),
        "to_delete_from": _file(platform, VERIFY, APPROVE),
        "to_reorder": _file(platform, VERIFY, APPROVE),
        "to_rewrite": _file(platform, VERIFY, APPROVE),
    }


def audit(platform, *args, source="gateway", token=True, timeout=120, command=AUDIT):
    """Run the command as an auditor on another machine would."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KSMART_AUDIT_")}
    if token:
        env["KSMART_AUDIT_TOKEN"] = platform.token("auditor")
    if source == "gateway":
        where = ["--gateway", platform.base_url]
    elif source == "database":
        where = ["--database-url", platform.databases["applications"].url_as("relay")]
    else:
        where = []
    return subprocess.run(
        [*command, *args, *where],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=timeout,
    )


def _exported(result) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _streams_named(report: str) -> set[str]:
    return set(STREAM_NAMED.findall(report))


# -- an untouched store ------------------------------------------------------------


def test_an_untouched_store_verifies_over_the_gateway_and_the_database(platform, files):
    whole = audit(platform, "verify", "--page-size", "4")
    assert whole.returncode == 0, whole.stderr
    assert "VERIFIED" in whole.stderr
    assert re.search(r"in 8 streams, global positions 1 to \d+", whole.stderr), whole.stderr
    assert "events/s" in whole.stderr  # progress
    assert whole.stdout == ""

    direct = audit(platform, "verify", source="database")
    assert direct.returncode == 0, direct.stderr
    assert "VERIFIED" in direct.stderr
    assert re.search(r"position [\d,]+ of [\d,]+ \(100%\)", direct.stderr), direct.stderr

    for file_id in (files["returned_and_approved"], files["pending"]):
        for source in ("gateway", "database"):
            one = audit(platform, "verify", "--file", file_id, source=source)
            assert one.returncode == 0, one.stderr
            assert f"file-{file_id}" in one.stderr

    # Position 3 is inside the first file's stream (submitted, returned, ...).
    later = audit(platform, "verify", "--after", "3", "--page-size", "3")
    assert later.returncode == 0, later.stderr
    assert "began before the range" in later.stderr


def test_a_token_file_serves_as_well_as_the_environment(platform, files, tmp_path):
    token_file = tmp_path / "auditor.token"
    token_file.write_text(platform.token("auditor") + "\n")
    result = audit(
        platform, "verify", "--file", files["pending"], "--token-file", str(token_file), token=False
    )
    assert result.returncode == 0, result.stderr


def test_only_an_auditor_with_a_reachable_gateway_gets_an_answer(platform, files):
    no_token = audit(platform, "verify", token=False)
    assert no_token.returncode == 2 and "KSMART_AUDIT_TOKEN" in no_token.stderr

    as_clerk = subprocess.run(
        [*AUDIT, "verify", "--gateway", platform.base_url],
        capture_output=True,
        text=True,
        env={**os.environ, "KSMART_AUDIT_TOKEN": platform.token("clerk.kochi")},
        timeout=60,
    )
    assert as_clerk.returncode == 2 and "not an auditor" in as_clerk.stderr, as_clerk.stderr

    nowhere = audit(platform, "verify", "--gateway", "http://127.0.0.1:9", source=None)
    assert nowhere.returncode == 2 and "cannot reach" in nowhere.stderr

    unknown = audit(platform, "export", "--file", "00000000-0000-4000-8000-000000000000")
    assert unknown.returncode == 2 and "no file" in unknown.stderr


def test_an_export_is_json_lines_as_served_and_verifies_read_back(platform, files, tmp_path):
    exported = _exported(audit(platform, "export", "--after", "0", "--page-size", "5"))
    positions = [event["global_position"] for event in exported]
    assert positions == list(range(1, len(positions) + 1))
    served = requests.get(
        f"{platform.base_url}/api/v1/audit/events",
        params={"after": 0, "limit": 1000},
        headers=platform.as_user("auditor"),
        timeout=10,
    ).json()["events"]
    assert exported == served[: len(exported)]  # the envelope JSON exactly as served

    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(event) + "\n" for event in exported), encoding="utf-8")
    read_back = audit(platform, "verify", "--input", str(path), source=None)
    assert read_back.returncode == 0, read_back.stderr
    assert "an export of the log" in read_back.stderr and "VERIFIED" in read_back.stderr

    # The same from the database, and a range of it.
    assert _exported(audit(platform, "export", "--after", "0", source="database")) == exported
    ranged = audit(platform, "export", "--after", "3", "--until", "7", "--page-size", "2")
    assert [event["global_position"] for event in _exported(ranged)] == [4, 5, 6, 7]
    assert "position 7" in ranged.stderr  # how far it got

    one_file = audit(platform, "export", "--file", files["returned_and_approved"])
    events = _exported(one_file)
    # ... approve, and the certificate issued with the grant.
    assert [event["stream_version"] for event in events] == [1, 2, 3, 4, 5, 6]
    file_path = tmp_path / "file.jsonl"
    file_path.write_text(one_file.stdout, encoding="utf-8")
    read_back = audit(platform, "verify", "--input", str(file_path), source=None)
    assert read_back.returncode == 0, read_back.stderr
    assert f"an export of file-{files['returned_and_approved']}" in read_back.stderr


def test_a_replay_matches_what_the_platform_shows(platform, files):
    file_id = files["returned_and_approved"]
    for source in ("gateway", "database"):
        result = audit(platform, "replay", "--file", file_id, "--compare", source=source)
        assert result.returncode == 0, result.stderr
        assert "VERIFIED" in result.stderr and "field by field" in result.stderr
        replayed = json.loads(result.stdout)
        assert replayed["state"]["state"] == "approved" and replayed["state"]["version"] == 6
        assert [step["action"] for step in replayed["state"]["timeline"]] == [
            "submit",
            "return_for_clarification",
            "resubmit",
            "verify",
            "approve",
            "issue_certificate",
        ]
    shown = requests.get(
        f"{platform.base_url}/api/v1/files/{file_id}",
        headers=platform.as_user("auditor"),
        timeout=10,
    ).json()
    # Where its events stand in the public log is shown beside the file, not replayed.
    shown.pop("transparency", None)
    assert {k: v for k, v in replayed["state"].items() if k in shown} == shown

    rejected = audit(platform, "replay", "--file", files["rejected"], "--compare")
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout)["state"]["state"] == "rejected"


def test_the_tool_installed_alone_verifies_replays_and_goes_back_in_time(platform, files, tmp_path):
    """An auditor's own environment: ksmart-common and ksmart-audit with what
    they declare, and none of the platform's frameworks or drivers."""
    alone = audit_alone.create(tmp_path / "auditor")
    for framework in ("nameko", "sqlalchemy", "psycopg2", "kombu", "pika"):
        probe = subprocess.run([alone / "python", "-c", f"import {framework}"], capture_output=True)
        assert probe.returncode != 0, f"{framework} is in the auditor's environment"
    command = [str(alone / "ksmart-audit")]
    file_id = files["returned_and_approved"]

    verified = audit(platform, "verify", "--file", file_id, command=command)
    assert verified.returncode == 0, verified.stderr
    assert "VERIFIED" in verified.stderr and f"file-{file_id}" in verified.stderr

    replayed = audit(platform, "replay", "--file", file_id, "--compare", command=command)
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["state"]["state"] == "approved"

    events = _exported(audit(platform, "export", "--file", file_id, command=command))
    at = events[1]["recorded_at"]
    then = audit(platform, "as-of", "--file", file_id, "--at", at, command=command)
    assert then.returncode == 0, then.stderr
    assert json.loads(then.stdout)["state"]["state"] == "clarification_requested"

    # The operators' database source names what it lacks, as a usage error.
    direct = audit(platform, "verify", source="database", command=command)
    assert direct.returncode == 2
    assert "install ksmart-common[io]" in direct.stderr


def test_as_of_a_moment_between_two_decisions_shows_the_file_then(platform, files):
    file_id = files["timed"]
    events = _exported(audit(platform, "export", "--file", file_id))
    moments = [datetime.fromisoformat(event["recorded_at"]) for event in events]
    between = moments[1] + (moments[2] - moments[1]) / 2
    assert moments[1] < between < moments[2]

    result = audit(platform, "as-of", "--file", file_id, "--at", between.isoformat())
    assert result.returncode == 0, result.stderr
    then = json.loads(result.stdout)
    # verify, approve, and the certificate issued with the approval
    assert then["events_applied"] == 2 and then["events_in_file"] == 4
    assert then["last_event"]["event_type"] == "FileVerified"
    assert (then["state"]["state"], then["state"]["version"]) == ("verified", 2)
    assert [step["action"] for step in then["state"]["timeline"]] == ["submit", "verify"]
    assert "'verified' at version 2" in result.stderr

    at_the_end = audit(platform, "as-of", "--file", file_id, "--at", events[2]["recorded_at"])
    assert json.loads(at_the_end.stdout)["state"]["state"] == "approved"
    before = audit(
        platform, "as-of", "--file", file_id, "--at", "2000-01-01T00:00:00Z", source="database"
    )
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout)["state"] is None
    assert "did not exist yet" in before.stderr


# -- tampered behind the platform's back ---------------------------------------------

_ROW = (
    "SELECT global_position, event_id, stream_id, stream_version, event_type, schema_version,"
    " data::text AS data, metadata::text AS metadata, recorded_at, prev_hash, hash"
    " FROM events WHERE stream_id = :s AND stream_version = :v"
)


def _row(conn, file_id, version):
    return conn.execute(sa.text(_ROW), {"s": f"file-{file_id}", "v": version}).mappings().one()


def _assert_found(result, file_id, *versions, kind):
    assert result.returncode == 1, result.stdout + result.stderr
    report = result.stderr
    assert "DIFFERENCE" in report and kind in report
    for version in versions:
        assert f"file-{file_id} v{version}" in report, report
    # Only the tampered file is named: the cases do not mix.
    assert _streams_named(report) == {f"file-{file_id}"}, report


def _assert_verifies_again(platform, file_id):
    assert audit(platform, "verify", "--file", file_id).returncode == 0
    assert audit(platform, "verify", "--quiet").returncode == 0


def test_an_altered_event_is_found(platform, files):
    file_id = files["to_alter"]
    with events_unguarded(platform) as conn:
        original = _row(conn, file_id, 2)
        conn.execute(
            sa.text(
                "UPDATE events SET data = json_build_object('action', 'verify', 'from_state',"
                " 'submitted', 'to_state', 'verified', 'remarks', 'forged', 'actor_role',"
                " 'clerk') WHERE stream_id = :s AND stream_version = 2"
            ),
            {"s": f"file-{file_id}"},
        )
    try:
        for source in ("gateway", "database"):
            _assert_found(audit(platform, "verify", source=source), file_id, 2, kind="altered")
            _assert_found(
                audit(platform, "verify", "--file", file_id, source=source),
                file_id,
                2,
                kind="altered",
            )
        replayed = audit(platform, "replay", "--file", file_id, "--compare")
        _assert_found(replayed, file_id, 2, kind="altered")
        # Replayed as stored, it is what the platform shows: only the hash tells.
        assert "differs" not in replayed.stderr
    finally:
        with events_unguarded(platform) as conn:
            conn.execute(
                sa.text(
                    "UPDATE events SET data = CAST(:d AS json)"
                    " WHERE stream_id = :s AND stream_version = 2"
                ),
                {"d": original["data"], "s": f"file-{file_id}"},
            )
    _assert_verifies_again(platform, file_id)


def test_a_deleted_event_is_found(platform, files):
    file_id = files["to_delete_from"]
    with events_unguarded(platform) as conn:
        deleted = _row(conn, file_id, 2)
        conn.execute(
            sa.text("DELETE FROM events WHERE stream_id = :s AND stream_version = 2"),
            {"s": f"file-{file_id}"},
        )
    try:
        for source in ("gateway", "database"):
            result = audit(platform, "verify", source=source)
            _assert_found(result, file_id, 3, kind="missing")
            position = deleted["global_position"]
            assert f"global position {position}" in result.stderr
            assert f"position {position} is missing" in result.stderr
        # The platform serves the file's events as stored, though they no
        # longer replay; the tool finds the broken link in them.
        one = audit(platform, "verify", "--file", file_id)
        _assert_found(one, file_id, 3, kind="broken link")
        replayed = audit(platform, "replay", "--file", file_id, "--compare")
        _assert_found(replayed, file_id, 3, kind="projection refused")
        assert "the platform does not show the file" in replayed.stderr
    finally:
        with events_unguarded(platform) as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO events (global_position, event_id, stream_id, stream_version,"
                    " event_type, schema_version, data, metadata, recorded_at, prev_hash, hash)"
                    " VALUES (:global_position, :event_id, :stream_id, :stream_version,"
                    " :event_type, :schema_version, CAST(:data AS json),"
                    " CAST(:metadata AS json), :recorded_at, :prev_hash, :hash)"
                ),
                dict(deleted),
            )
    _assert_verifies_again(platform, file_id)


def _swap_versions(conn, file_id, first, second):
    """The rows keep their places in the log and trade stream versions
    (through a free number: (stream_id, stream_version) is unique)."""
    stream = f"file-{file_id}"
    for old, new in ((first, 1000), (second, first), (1000, second)):
        conn.execute(
            sa.text(
                "UPDATE events SET stream_version = :new"
                " WHERE stream_id = :s AND stream_version = :old"
            ),
            {"s": stream, "old": old, "new": new},
        )


def test_two_reordered_events_are_found(platform, files):
    file_id = files["to_reorder"]
    with events_unguarded(platform) as conn:
        _swap_versions(conn, file_id, 2, 3)
    try:
        for source in ("gateway", "database"):
            result = audit(platform, "verify", source=source)
            _assert_found(result, file_id, 2, 3, kind="reordered")
            assert "renumbered from v2 to v3" in result.stderr
            one = audit(platform, "verify", "--file", file_id, source=source)
            _assert_found(one, file_id, 2, 3, kind="reordered")
            assert "broken link" in one.stderr
    finally:
        with events_unguarded(platform) as conn:
            _swap_versions(conn, file_id, 2, 3)
    _assert_verifies_again(platform, file_id)


# -- the stored text rewritten so that it parses alike (issue 18, item 5) ----------
# Each rewriting leaves the row's `data` parsing to the same values as the text
# that was sealed (`1.0` to the same number as most JSON readers see it): a
# verifier hashing a re-encoding of the parsed values would pass them all.


def _first_integer_as_float(text: str) -> str:
    return re.sub(r'":(\d+)([,}\]])', r'":\1.0\2', text, count=1)


def _escaped_letter(text: str) -> str:
    at = text.index('":"') + 3  # the first character of the first string value
    return f"{text[:at]}\\u{ord(text[at]):04x}{text[at + 1 :]}"


def _first_key_twice(text: str) -> str:
    key, rest = text[1:].split(":", 1)
    value = json.dumps(json.loads(text)[json.loads(key)], ensure_ascii=False)
    return "{" + f"{key}:{value}," + text[1:]


REWRITINGS = {
    "a key written twice": (_first_key_twice, "appears twice"),
    "1.0 where 1 was": (_first_integer_as_float, None),
    "another escape of the same letter": (_escaped_letter, "canonical JSON writes"),
    "a space more": (lambda text: text.replace(":", ": ", 1), "canonical JSON writes"),
}


@pytest.mark.parametrize("rewriting", sorted(REWRITINGS))
def test_a_stored_text_rewritten_to_parse_alike_is_found(platform, files, rewriting):
    file_id = files["to_rewrite"]
    rewrite, why = REWRITINGS[rewriting]
    version = 1  # ApplicationSubmitted: keys, integers and strings of every kind
    with events_unguarded(platform) as conn:
        original = _row(conn, file_id, version)["data"]
        rewritten = rewrite(original)
        assert rewritten != original and json.loads(rewritten) == json.loads(original)
        conn.execute(
            sa.text(
                "UPDATE events SET data = CAST(:d AS json)"
                " WHERE stream_id = :s AND stream_version = :v"
            ),
            {"d": rewritten, "s": f"file-{file_id}", "v": version},
        )
        assert _row(conn, file_id, version)["data"] == rewritten  # `json` keeps the text
    try:
        for source in ("gateway", "database"):
            for where in ([], ["--file", file_id]):
                result = audit(platform, "verify", *where, source=source)
                _assert_found(result, file_id, version, kind="altered")
                assert "stored text" in result.stderr
                if why is not None:
                    assert "not canonical" in result.stderr and why in result.stderr
        served = requests.get(
            f"{platform.base_url}/api/v1/audit/files/{file_id}/events",
            headers=platform.as_user("auditor"),
            timeout=10,
        ).json()
        assert served["verified"] is False
        assert f"file-{file_id} v1: hash does not match" in served["problems"][0]
        # The export carries the rewritten text verbatim, and read back it
        # is found again, offline.
        exported = _exported(audit(platform, "export", "--file", file_id))
        assert rewritten in exported[0]["canonical"]
        offline = subprocess.run(
            [*AUDIT, "verify", "--input", "-"],
            input=audit(platform, "export", "--file", file_id).stdout,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
        )
        _assert_found(offline, file_id, version, kind="altered")
    finally:
        with events_unguarded(platform) as conn:
            conn.execute(
                sa.text(
                    "UPDATE events SET data = CAST(:d AS json)"
                    " WHERE stream_id = :s AND stream_version = :v"
                ),
                {"d": original, "s": f"file-{file_id}", "v": version},
            )
    _assert_verifies_again(platform, file_id)


def test_an_export_carries_each_events_stored_text_and_its_hash_is_of_those_bytes(platform, files):
    """What an auditor's own program in any language checks: sha256 of the
    previous hash and the `canonical` text's bytes, and the row's own
    `data` and `metadata` text inside that text, verbatim."""
    file_id = files["returned_and_approved"]
    exported = _exported(audit(platform, "export", "--file", file_id))
    with platform.engine("applications").connect() as conn:
        for event in exported:
            text = event["canonical"]
            digest = hashlib.sha256((event["prev_hash"] + text).encode("utf-8")).hexdigest()
            assert digest == event["hash"]
            row = _row(conn, file_id, event["stream_version"])
            assert f'"data":{row["data"]},' in text
            assert f'"metadata":{row["metadata"]},' in text
            assert json.loads(text) == {
                k: v for k, v in event.items() if k not in ("hash", "signature", "canonical")
            }
