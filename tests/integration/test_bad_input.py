"""Input built to break things, against the real platform: every refusal is
a clear problem document (never a 500) and leaves nothing behind; what is
valid but unusual (Malayalam, injection-looking text) is kept exactly as
sent; uploaded file names never become paths or headers."""

import hashlib
import http.client
import json
import uuid
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa

from ksmart_catalogue.samples import documents_needed, sample_form
from ksmart_common.domain.documents import MAX_DOCUMENT_BYTES
from ksmart_common.envelope import file_stream_id
from tests.support import citizen
from tests.support.platform import running_platform

PROBLEM = "application/problem+json"
MAX_BODY_BYTES = 256 * 1024


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("bad-input")) as running:
        yield running


@pytest.fixture(scope="module")
def birth(platform):
    return citizen.definition_of(platform, "birth-certificate")


@pytest.fixture(scope="module")
def complete(platform):
    """A complete birth registration whose documents are uploaded; each
    test sends a copy, changed as it needs."""
    return citizen.application(platform)


def _url(platform, path):
    return f"{platform.base_url}/api/v1{path}"


def _stored(platform):
    """What the platform holds: events, upload records and document files."""
    with platform.engine("applications").connect() as conn:
        events = conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
        uploads = conn.execute(sa.text("SELECT count(*) FROM uploads")).scalar_one()
    documents = platform.run_dir / "documents"
    files = sum(1 for path in documents.rglob("*") if path.is_file()) if documents.exists() else 0
    return {"events": events, "uploads": uploads, "document files": files}


def _post_raw(platform, body, content_type="application/json", path="/files", headers=None):
    return requests.post(
        _url(platform, path),
        data=body,
        headers={**platform.as_user("citizen"), "Content-Type": content_type, **(headers or {})},
        timeout=30,
    )


def _assert_problem(reply, status, *fields):
    """A problem document with this status (a set of statuses allowed) that
    names these fields."""
    statuses = status if isinstance(status, set) else {status}
    assert reply.status_code in statuses, (reply.status_code, reply.text[:500])
    assert reply.headers["Content-Type"] == PROBLEM
    problem = reply.json()
    assert problem["status"] == reply.status_code and problem["title"]
    named = {p["field"] for p in problem.get("problems", [])}
    assert set(fields) <= named, problem
    return problem


def _with_form(application, **answers):
    return {**application, "form": {**application["form"], **answers}}


# -- the body itself -------------------------------------------------------------


def _oversized():
    filler = "x" * (MAX_BODY_BYTES + 1024)
    return json.dumps(
        {
            "service_code": "birth-certificate",
            "local_body": "KL-EKM-KOC",
            "form": {"child_name": filler},
        }
    ).encode()


def test_an_oversized_body_is_refused_unread(platform):
    before = _stored(platform)
    _assert_problem(_post_raw(platform, _oversized()), 413, "body")
    # Sent in chunks, without a length to refuse it by up front.
    chunked = _post_raw(platform, iter([_oversized()[:1000], _oversized()[1000:]]))
    _assert_problem(chunked, 413, "body")
    assert _stored(platform) == before


def test_a_body_sent_in_chunks_is_read(platform):
    chunked = _post_raw(platform, iter([b'{"service_code": "birth-certificate", ', b'"x": 1}']))
    # Read, then refused for what it says (the local body and form are missing).
    _assert_problem(chunked, 422, "local_body", "x")


def test_a_complete_application_sent_in_chunks_is_filed(platform):
    application = citizen.application(platform, answers={"place_of_birth": "hospital"})
    application = _with_form(application, mother_name="ആശ മേനോൻ")
    encoded = json.dumps(application, ensure_ascii=False).encode()
    # Small pieces, so chunks end inside words and inside Malayalam letters.
    pieces = iter([encoded[start : start + 7] for start in range(0, len(encoded), 7)])
    file = _file_of(platform, _post_raw(platform, pieces))
    assert file["form"] == application["form"]


def test_a_chunked_body_over_the_limit_is_refused_before_its_end(platform):
    """The gateway reads a chunked body no further than the limit: it answers
    413 while the rest of the body has not even been sent."""
    before = _stored(platform)
    address = urlsplit(platform.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.putrequest("POST", "/api/v1/files")
        for name, value in {
            **platform.as_user("citizen"),
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
        }.items():
            connection.putheader(name, value)
        connection.endheaders()
        piece = b'{"form": {"child_name": "' + b"x" * (16 * 1024)
        for _ in range(MAX_BODY_BYTES // len(piece) + 4):
            connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        # No closing chunk: a gateway that waited for the end would not answer.
        reply = connection.getresponse()
        assert reply.status == 413, reply.read()[:500]
        assert reply.getheader("Content-Type") == PROBLEM
        problem = json.loads(reply.read())
    finally:
        connection.close()
    assert problem["status"] == 413
    assert {p["field"] for p in problem["problems"]} == {"body"}
    assert _stored(platform) == before


def _pieces(content, size=64 * 1024):
    return (content[start : start + size] for start in range(0, len(content), size))


def test_a_document_sent_in_chunks_is_stored(platform):
    before = _stored(platform)
    content = citizen.SAMPLE_CONTENT["image/png"] + uuid.uuid4().bytes * 20_000
    reply = _post_raw(
        platform,
        _pieces(content),
        content_type="application/octet-stream",
        path="/documents?filename=scan.png",
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["sha256"] == hashlib.sha256(content).hexdigest()
    assert reply.json()["size_bytes"] == len(content)
    after = _stored(platform)
    assert after["uploads"] == before["uploads"] + 1
    assert after["document files"] == before["document files"] + 1


def test_a_document_over_the_limit_sent_in_chunks_is_refused_and_nothing_is_kept(platform):
    before = _stored(platform)
    head = citizen.SAMPLE_CONTENT["image/png"]
    content = head + b"\x00" * (MAX_DOCUMENT_BYTES + 1 - len(head))
    reply = _post_raw(
        platform,
        _pieces(content),
        content_type="application/octet-stream",
        path="/documents?filename=scan.png",
    )
    _assert_problem(reply, 413, "document")
    # Neither a record nor a file, not even a half-written temporary one.
    assert _stored(platform) == before


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_a_body_that_is_not_declared_json_is_refused(platform, complete, content_type):
    before = _stored(platform)
    reply = _post_raw(platform, json.dumps(complete), content_type=content_type)
    _assert_problem(reply, 415)
    assert _stored(platform) == before


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"service_code": "birth-certificate",}',
        b"{'service_code': 'birth-certificate'}",
        b"",
        b"\xff\xfe\x00",
        b'{"form": {"x": Infinity}}',
        b'{"form": {"x": -NaN}}',
    ],
    ids=["unclosed", "trailing-comma", "single-quotes", "empty", "not-utf8", "infinity", "nan"],
)
def test_a_body_that_is_not_json_is_refused(platform, body):
    before = _stored(platform)
    _assert_problem(_post_raw(platform, body), 400)
    assert _stored(platform) == before


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object_is_refused(platform, body):
    _assert_problem(_post_raw(platform, body), 422)


@pytest.mark.parametrize(
    "opening, closing, depth",
    [("[", "]", 10_000), ("[", "]", 100_000), ('{"a":', "}", 10_000), ('{"a":', "}", 40_000)],
    ids=["array-10k", "array-100k", "object-10k", "object-40k"],
)
def test_deeply_nested_json_is_a_clear_refusal_not_a_crash(
    platform, complete, opening, closing, depth
):
    nested = opening * depth + "1" + closing * depth
    before = _stored(platform)
    body = json.dumps(complete)[:-1] + f', "nested": {nested}}}'
    _assert_problem(_post_raw(platform, body.encode()), 400)
    # In a form answer, where it would be carried into an event.
    body = json.dumps(_with_form(complete, child_name="__nested__"))
    _assert_problem(_post_raw(platform, body.replace('"__nested__"', nested)), 400)
    assert _stored(platform) == before
    # The gateway lives on and still parses and files a sound application.
    live = requests.get(f"{platform.ops_url('gateway')}/health/live", timeout=10)
    assert live.status_code == 200, live.text
    filed = _post_raw(platform, json.dumps(complete).encode())
    assert filed.status_code == 201, filed.text
    assert _stored(platform)["events"] == before["events"] + 1


def test_a_number_too_large_for_a_double_is_refused(platform, complete):
    before = _stored(platform)
    body = json.dumps(_with_form(complete, child_name="__n__")).replace('"__n__"', "1e999")
    problem = _assert_problem(_post_raw(platform, body), 400)
    assert "too large" in problem["detail"]
    assert _stored(platform) == before


def test_an_integer_beyond_any_limit_is_refused(platform):
    application = citizen.application(platform, "public-grievance")
    before = _stored(platform)
    body = json.dumps(_with_form(application, ward_number=10**400))
    problem = _assert_problem(_post_raw(platform, body), 422, "form.ward_number")
    assert {p["code"] for p in problem["problems"]} == {"above_maximum"}
    # More digits than Python reads as a number at all.
    body = json.dumps(_with_form(application, ward_number="__n__"))
    _assert_problem(_post_raw(platform, body.replace('"__n__"', "9" * 5000)), 400)
    # A number where text is asked for.
    body = json.dumps(_with_form(application, complainant_name=10**400))
    _assert_problem(_post_raw(platform, body), 422, "form.complainant_name")
    assert _stored(platform) == before


def test_a_400_digit_integer_is_refused_even_where_the_form_sets_no_maximum(platform):
    application = citizen.application(platform, "trade-licence")
    assert "capital_investment_rupees" in application["form"]
    before = _stored(platform)
    body = json.dumps(_with_form(application, capital_investment_rupees=10**400))
    _assert_problem(_post_raw(platform, body), 422, "form.capital_investment_rupees")
    assert _stored(platform) == before


# -- text in any script, and text that hides -----------------------------------------


def _file_of(platform, reply):
    assert reply.status_code == 201, reply.text
    file_id = reply.json()["file_id"]
    shown = requests.get(
        _url(platform, f"/files/{file_id}"), headers=platform.as_user("citizen"), timeout=10
    )
    assert shown.status_code == 200 and shown.headers["Content-Type"] == "application/json"
    return shown.json()


def test_an_application_in_malayalam_is_filed_and_shown_as_written(platform):
    answers = {
        "child_name": "അഞ്ജലി",
        "mother_name": "ആശ മേനോൻ",
        # Zero-width joiner and non-joiner are part of Malayalam spelling.
        "informant_name": "ആശ\u200dമേനോൻ\u200c",
        "parents_address": "12, എം.ജി. റോഡ്, കൊച്ചി",
        "hospital_name": "ജനറൽ ആശുപത്രി, എറണാകുളം",
    }
    application = citizen.application(platform, answers={"place_of_birth": "hospital"})
    file = _file_of(platform, citizen.submit(platform, _with_form(application, **answers)))
    assert {name: file["form"][name] for name in answers} == answers


@pytest.mark.parametrize(
    "name",
    ["Asha\u202eanoneM", "Asha\u202dMenon", "Asha\u2066Menon\u2069", "Asha\u0007Menon", "\ue000"],
    ids=["right-to-left-override", "left-to-right-override", "isolate", "bell", "private-use"],
)
def test_characters_that_hide_or_reorder_text_are_refused_by_field(platform, complete, name):
    before = _stored(platform)
    reply = citizen.submit(platform, _with_form(complete, mother_name=name))
    problem = _assert_problem(reply, 422, "form.mother_name")
    assert [p["code"] for p in problem["problems"]] == ["control_characters"]
    assert _stored(platform) == before


@pytest.mark.parametrize("invisible", ["\u200b", "\u2060", "\ufeff"])
def test_invisible_characters_in_a_name_are_refused_by_field(platform, complete, invisible):
    before = _stored(platform)
    reply = citizen.submit(platform, _with_form(complete, mother_name=f"Asha{invisible}Menon"))
    _assert_problem(reply, 422, "form.mother_name")
    assert _stored(platform) == before


@pytest.mark.parametrize(
    "raw_answer",
    ['"Asha\\u0000Menon"', '"Asha\\ud800Menon"', '"\\udfff"'],
    ids=["nul", "lone-high-surrogate", "lone-low-surrogate"],
)
def test_text_no_event_could_hold_is_refused_as_a_bad_body(platform, complete, raw_answer):
    # Valid JSON, but not text PostgreSQL (NUL) or UTF-8 (surrogates) can store:
    # refused with the body, before any field is looked at.
    before = _stored(platform)
    body = json.dumps(_with_form(complete, mother_name="__x__")).replace('"__x__"', raw_answer)
    _assert_problem(_post_raw(platform, body), 400)
    assert _stored(platform) == before


def test_a_raw_nul_byte_or_surrogate_in_the_body_is_refused(platform, complete):
    before = _stored(platform)
    encoded = json.dumps(_with_form(complete, mother_name="__x__")).encode()
    for raw in (b"Asha\x00Menon", b"Asha\xed\xa0\x80Menon"):
        _assert_problem(_post_raw(platform, encoded.replace(b"__x__", raw)), 400)
    assert _stored(platform) == before


INJECTIONS = {
    "child_name": "Robert'); DROP TABLE events;--",
    "hospital_name": "'; DROP TABLE events;--",
    "birth_place_address": "<script>alert(document.cookie)</script>",
    "parents_address": '{{7*7}} ${7*7} "\\" `id` $(id) && id',
    "informant_name": "' OR '1'='1",
}


def test_injection_strings_are_kept_as_text_and_never_run(platform):
    before = _stored(platform)
    application = citizen.application(platform, answers={"place_of_birth": "hospital"})
    file = _file_of(platform, citizen.submit(platform, _with_form(application, **INJECTIONS)))
    assert {name: file["form"][name] for name in INJECTIONS} == INJECTIONS
    after = _stored(platform)
    # The events table is still there, and grew by this file's events only.
    assert after["events"] > before["events"]
    with platform.engine("applications").connect() as conn:
        recorded = conn.execute(
            sa.text("SELECT data FROM events WHERE stream_id = :s"),
            {"s": file_stream_id(file["file_id"])},
        ).scalars()
        text = "".join(json.dumps(data, ensure_ascii=False) for data in recorded)
    # Kept once, exactly as sent (JSON-escaped in the event, as any text is).
    assert text.count("DROP TABLE events") == 2
    assert json.dumps(INJECTIONS["birth_place_address"]) in text
    # And in a search: a query, not a statement.
    found = requests.get(
        _url(platform, "/services"), params={"q": "'; DROP TABLE events;--"}, timeout=10
    )
    assert found.status_code == 200 and found.json()["services"] == []


@pytest.mark.parametrize(
    "text", ["Disability of 60% (certified)", "%s %s %s", "50%% paid"], ids=["60%", "%s", "%%"]
)
def test_a_percent_sign_in_an_answer_is_kept_as_text(platform, text):
    application = citizen.application(platform, answers={"place_of_birth": "hospital"})
    file = _file_of(platform, citizen.submit(platform, _with_form(application, hospital_name=text)))
    assert file["form"]["hospital_name"] == text
    with platform.engine("applications").connect() as conn:
        recorded = conn.execute(
            sa.text("SELECT data FROM events WHERE stream_id = :s"),
            {"s": file_stream_id(file["file_id"])},
        ).scalars()
        assert text in "".join(json.dumps(data, ensure_ascii=False) for data in recorded)


# -- document names ------------------------------------------------------------------

PATH_TRICKS = [
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/etc/shadow",
    "C:\\Windows\\System32\\cmd.exe",
    "\\\\server\\share\\report.pdf",
    "....//....//x.pdf",
    "..",
    "report.pdf\r\nX-Injected: 1",
    'a"; filename="evil.sh',
]


def _safe(name):
    return name is None or (
        "/" not in name
        and "\\" not in name
        and not name.startswith(".")
        and not set(name) & set('"\r\n;:')
    )


def test_path_tricks_in_document_names_never_become_paths_or_headers(platform, birth):
    before = _stored(platform)
    form = sample_form(birth)
    documents = {}
    for index, spec in enumerate(documents_needed(birth, form)):
        trick = PATH_TRICKS[index % len(PATH_TRICKS)]
        content = citizen.SAMPLE_CONTENT["application/pdf"] + uuid.uuid4().bytes
        uploaded = citizen.upload(platform, content, filename=trick)
        assert uploaded.status_code == 201, uploaded.text
        assert _safe(uploaded.json()["filename"]), (trick, uploaded.json()["filename"])
        documents[spec["code"]] = uploaded.json()["sha256"]
    for trick in PATH_TRICKS:  # the ones not needed above, named and checked too
        content = citizen.SAMPLE_CONTENT["image/png"] + uuid.uuid4().bytes
        uploaded = citizen.upload(platform, content, filename=trick)
        assert uploaded.status_code == 201 and _safe(uploaded.json()["filename"]), trick

    body = {
        "service_code": "birth-certificate",
        "local_body": citizen.KOCHI,
        "form": form,
        "documents": documents,
    }
    file = _file_of(platform, citizen.submit(platform, body))
    for code, shown in file["documents"].items():
        assert _safe(shown["filename"]), shown
        download = requests.get(
            _url(platform, f"/files/{file['file_id']}/documents/{code}"),
            headers=platform.as_user("citizen"),
            timeout=10,
        )
        assert download.status_code == 200
        assert download.headers["Content-Disposition"] == f'attachment; filename="{code}.pdf"'
        assert "X-Injected" not in download.headers

    # One record and one stored file per upload, all inside the documents folder.
    uploads_made = len(documents) + len(PATH_TRICKS)
    after = _stored(platform)
    assert after["uploads"] == before["uploads"] + uploads_made
    assert after["document files"] == before["document files"] + uploads_made
    documents_dir = (platform.run_dir / "documents").resolve()
    stored = [path.resolve() for path in documents_dir.rglob("*") if path.is_file()]
    assert all(documents_dir in path.parents for path in stored)


def test_a_document_name_too_long_is_refused_and_nothing_is_kept(platform):
    before = _stored(platform)
    reply = citizen.upload(platform, citizen.SAMPLE_CONTENT["image/png"], filename="a" * 5000)
    _assert_problem(reply, 422, "filename")
    assert _stored(platform) == before


# -- query strings -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, params, user",
    [
        ("/services", {"q": "birth", "debug": "1"}, None),
        ("/inbox", {"limit": "5", "sql": "1=1"}, "clerk.kochi"),
        ("/audit/events", {"after": "0", "admin": "true"}, "auditor"),
        ("/statistics", {"local_body": "KL-EKM-KOC", "format": "csv"}, None),
    ],
)
def test_an_unknown_query_parameter_is_refused_by_name(platform, path, params, user):
    headers = platform.as_user(user) if user else {}
    reply = requests.get(_url(platform, path), params=params, headers=headers, timeout=10)
    unknown = next(name for name in params if name not in ("q", "limit", "after", "local_body"))
    _assert_problem(reply, 422, unknown)


def test_an_unknown_query_parameter_on_an_upload_stores_nothing(platform):
    before = _stored(platform)
    reply = requests.post(
        _url(platform, "/documents"),
        params={"filename": "scan.png", "path": "/etc/passwd"},
        data=citizen.SAMPLE_CONTENT["image/png"] + b"unknown parameter",
        headers={**platform.as_user("citizen"), "Content-Type": "application/octet-stream"},
        timeout=10,
    )
    _assert_problem(reply, 422, "path")
    assert _stored(platform) == before


@pytest.mark.parametrize(
    "params", [{"limit": "-1"}, {"limit": "1e999"}, {"limit": "9" * 400}, {"after": "\x00"}]
)
def test_bad_query_values_are_refused_by_name(platform, params):
    reply = requests.get(
        _url(platform, "/audit/events"),
        params=params,
        headers=platform.as_user("auditor"),
        timeout=10,
    )
    _assert_problem(reply, 422, *params)


@pytest.mark.parametrize(
    ("path", "params", "user"),
    [
        # Text searched in PostgreSQL, which holds no NUL: a 500 before (found by make fuzz).
        ("/admin/notifications", {"file_number": "KL\x00EKM", "channel": "sms"}, "admin"),
        ("/admin/notifications", {"destination": "+971\x00", "template": "\x00"}, "admin"),
        ("/inbox", {"cursor": "abc\x00"}, "clerk.kochi"),
    ],
)
def test_a_nul_in_a_query_is_refused_by_name(platform, path, params, user):
    reply = requests.get(
        _url(platform, path), params=params, headers=platform.as_user(user), timeout=10
    )
    bad = [name for name, value in params.items() if "\x00" in value]
    _assert_problem(reply, 422, *bad)


def test_a_request_line_too_long_gets_the_documented_414(platform):
    reply = requests.get(
        _url(platform, "/audit/events"),
        params={"after": "1" * 9000},
        headers=platform.as_user("auditor"),
        timeout=10,
    )
    assert reply.status_code == 414
    document = requests.get(_url(platform, "/openapi.json"), timeout=10).json()
    assert "414" in document["paths"]["/api/v1/audit/events"]["get"]["responses"]
