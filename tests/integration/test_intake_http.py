"""Intake over HTTP, on the real services: the checklist in one cacheable
answer, every problem of an application in one problem+json answer (in the
applicant's language) with nothing stored, documents judged by content and
read only by those who may read the file, fees paid through a signed
callback, and file numbers."""

import hashlib
import re
import uuid

import pytest
import requests
import sqlalchemy as sa

from ksmart_applications.payments import FakePaymentProvider
from ksmart_common.domain.documents import MAX_DOCUMENT_BYTES
from ksmart_common.signatures import PAYMENT_SIGNATURE_HEADER as SIGNATURE_HEADER
from tests.support import actions, citizen
from tests.support.platform import running_platform
from tests.support.waiting import wait_for

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("intake")) as running:
        yield running


def _url(platform, path):
    return f"{platform.base_url}/api/v1{path}"


def _event_count(platform):
    with platform.engine("applications").connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()


# -- the catalogue ----------------------------------------------------------------


def test_a_services_checklist_is_one_cacheable_answer(platform):
    first = requests.get(_url(platform, "/services/trade-licence"), timeout=10)
    assert first.status_code == 200
    checklist = first.json()
    for part in ("who_may_apply", "fields", "documents", "fees", "sla_days", "offices"):
        assert checklist[part], part
    assert first.headers["ETag"] == f'"{checklist["content_hash"]}"'
    assert "max-age" in first.headers["Cache-Control"]

    again = requests.get(
        _url(platform, "/services/trade-licence"),
        headers={"If-None-Match": first.headers["ETag"]},
        timeout=10,
    )
    assert again.status_code == 304 and again.content == b""

    pinned = requests.get(_url(platform, "/services/trade-licence?version=1"), timeout=10)
    assert "immutable" in pinned.headers["Cache-Control"]
    by_hash = requests.get(_url(platform, f"/definitions/{checklist['content_hash']}"), timeout=10)
    assert by_hash.json() == checklist and "immutable" in by_hash.headers["Cache-Control"]
    not_a_hash = requests.get(_url(platform, "/definitions/..%2Fetc"), timeout=10)
    assert not_a_hash.status_code in (404, 422)


def test_services_are_searched_in_either_language(platform):
    english = requests.get(_url(platform, "/services"), params={"q": "birth"}, timeout=10)
    malayalam = requests.get(_url(platform, "/services"), params={"q": "ജനന"}, timeout=10)
    assert "birth-certificate" in {s["code"] for s in english.json()["services"]}
    assert "birth-certificate" in {s["code"] for s in malayalam.json()["services"]}
    by_category = requests.get(
        _url(platform, "/services"), params={"category": "civil-registration"}, timeout=10
    ).json()["services"]
    assert by_category and {s["category"] for s in by_category} == {"civil-registration"}
    unknown = requests.get(
        _url(platform, "/services"),
        params={"category": "astrology", "local_body_type": "kingdom"},
        timeout=10,
    )
    assert unknown.status_code == 422 and unknown.headers["Content-Type"] == PROBLEM
    assert {p["field"] for p in unknown.json()["problems"]} == {"category", "local_body_type"}
    categories = requests.get(_url(platform, "/categories"), timeout=10).json()["categories"]
    assert all(category["services"] >= 1 for category in categories)


# -- every problem at once -------------------------------------------------------


def test_every_problem_of_an_application_comes_in_one_answer_and_nothing_is_stored(platform):
    body = citizen.application(platform, answers={"place_of_birth": "hospital"})
    body["form"].pop("mother_name")
    body["form"]["date_of_birth"] = "yesterday"
    body["form"]["phone"] = "98470 12345"
    body["documents"].pop("hospital_birth_report")
    before = _event_count(platform)

    reply = citizen.submit(platform, body)

    assert reply.status_code == 422 and reply.headers["Content-Type"] == PROBLEM
    problems = {(p["field"], p["code"]) for p in reply.json()["problems"]}
    assert problems == {
        ("form.mother_name", "required"),
        ("form.date_of_birth", "not_date"),
        ("form.phone", "not_phone"),
        ("documents.hospital_birth_report", "document_missing"),
    }
    assert _event_count(platform) == before

    in_malayalam = citizen.submit(platform, body, lang="ml-IN,ml;q=0.9,en;q=0.5")
    messages = {p["field"]: p["message"] for p in in_malayalam.json()["problems"]}
    assert messages["form.mother_name"] == "അമ്മയുടെ പേര്: നിർബന്ധമായും നൽകണം"
    assert in_malayalam.json()["detail"].startswith("അപേക്ഷയിൽ 4")


def _submit_raw(platform, body: str):
    """An application body sent as it is written, not as requests would
    encode it."""
    return requests.post(
        _url(platform, "/files"),
        data=body,
        headers={**platform.as_user("citizen"), "Content-Type": "application/json"},
        timeout=10,
    )


def test_a_body_that_is_not_json_is_refused_before_anything_is_read(platform):
    body = '{"service_code": "birth-certificate", "local_body": "KL-EKM-KOC", "form": {"x": NaN}}'
    reply = _submit_raw(platform, body)
    assert reply.status_code == 400 and reply.headers["Content-Type"] == PROBLEM


def test_text_that_is_not_unicode_is_refused_as_a_bad_body(platform):
    body = '{"service_code": "x", "local_body": "KL-EKM-KOC", "form": {"x": "\\ud800"}}'
    reply = _submit_raw(platform, body)
    assert reply.status_code == 400 and reply.headers["Content-Type"] == PROBLEM


def test_an_oversized_payment_callback_is_refused_unread(platform):
    reply = requests.post(
        _url(platform, "/payments/callback"),
        data=b"{" + b" " * (1024 * 1024) + b"}",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: "sha256=00"},
        timeout=10,
    )
    assert reply.status_code == 413


def test_another_citizens_upload_cannot_be_attached(platform):
    body = citizen.application(platform)
    # Same codes and hashes, but the uploads are the first citizen's, not this one's.
    stranger = citizen.submit(platform, body, user="citizen.dubai")
    assert stranger.status_code == 422
    assert {p["code"] for p in stranger.json()["problems"]} == {"document_not_uploaded"}


# -- documents ---------------------------------------------------------------------


def test_documents_are_judged_by_their_content_not_their_name(platform):
    text = citizen.upload(platform, b"#!/bin/sh\nrm -rf /\n", filename="certificate.pdf")
    assert text.status_code == 422 and text.headers["Content-Type"] == PROBLEM

    png = citizen.SAMPLE_CONTENT["image/png"] + b"named-pdf"
    named_pdf = citizen.upload(platform, png, filename="scan.pdf")
    assert named_pdf.status_code == 201
    assert named_pdf.json()["media_type"] == "image/png"
    assert named_pdf.json()["sha256"] == hashlib.sha256(png).hexdigest()

    tricky = citizen.upload(platform, png, filename="../../etc/\u202epasswd.pdf")
    assert tricky.status_code == 201
    assert "/" not in tricky.json()["filename"] and "\u202e" not in tricky.json()["filename"]
    malayalam = citizen.SAMPLE_CONTENT["image/png"] + b"malayalam name"
    named = citizen.upload(platform, malayalam, filename="ജനന സർട്ടിഫിക്കറ്റ്.png")
    assert named.json()["filename"] == "ജനന സർട്ടിഫിക്കറ്റ്.png"


def test_an_oversized_document_is_refused_without_being_stored(platform):
    big = citizen.SAMPLE_CONTENT["application/pdf"] + b"0" * (25 * 1024 * 1024)
    reply = citizen.upload(platform, big)
    assert reply.status_code == 413 and reply.headers["Content-Type"] == PROBLEM
    documents = platform.run_dir / "documents"
    stored = [path for path in documents.rglob("*") if path.is_file()] if documents.exists() else []
    assert all(path.stat().st_size < 1024 * 1024 for path in stored)


def test_a_document_that_breaks_its_services_limits_is_named(platform):
    """A service narrows what the platform takes: a photo that must be an
    image, a copy smaller than the platform's limit. An upload the platform
    accepts but the service does not is named, each one, in one answer."""
    service = "old-age-pension"
    definition = citizen.definition_of(platform, service)
    body = citizen.application(platform, service)
    specs = {spec["code"]: spec for spec in definition["documents"]}
    photo, copy = specs["applicant_photo"], specs["aadhaar_copy"]
    assert "application/pdf" not in photo["formats"] and photo["code"] in body["documents"]
    assert copy["max_bytes"] < MAX_DOCUMENT_BYTES and copy["code"] in body["documents"]

    pdf = citizen.SAMPLE_CONTENT["application/pdf"]
    for code, content in (
        (photo["code"], pdf + b"photo"),
        (copy["code"], pdf.ljust(copy["max_bytes"] + 1, b"x")),
    ):
        reply = citizen.upload(platform, content, filename=f"{code}.pdf")
        assert reply.status_code == 201, reply.text  # within the platform's own limits
        body["documents"][code] = reply.json()["sha256"]
    reply = citizen.submit(platform, body)

    assert reply.status_code == 422, reply.text
    named = {(p["field"], p["code"]) for p in reply.json()["problems"]}
    assert named == {
        (f"documents.{photo['code']}", "document_format"),
        (f"documents.{copy['code']}", "document_too_large"),
    }


def test_a_files_documents_are_read_only_by_those_who_may_read_the_file(platform):
    body = citizen.application(platform)
    file = citizen.submit(platform, body).json()
    code, sha256 = next(iter(body["documents"].items()))
    path = f"/files/{file['file_id']}/documents/{code}"

    for reader in ("citizen", "clerk.kochi", "auditor"):
        reply = requests.get(_url(platform, path), headers=platform.as_user(reader), timeout=10)
        assert reply.status_code == 200, (reader, reply.text)
        assert hashlib.sha256(reply.content).hexdigest() == sha256
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Content-Type"] == file["documents"][code]["media_type"]
    for outsider in ("citizen.dubai", "clerk.tvm"):
        reply = requests.get(_url(platform, path), headers=platform.as_user(outsider), timeout=10)
        assert reply.status_code == 404, outsider


def test_the_applicant_attaches_a_document_when_a_clarification_asks(platform):
    file = citizen.submit(platform, citizen.application(platform)).json()
    content = citizen.SAMPLE_CONTENT["application/pdf"] + b"a newer copy"
    sha256 = citizen.upload(platform, content).json()["sha256"]

    def attach():
        return requests.post(
            _url(platform, f"/files/{file['file_id']}/documents"),
            json={"code": "parent_identity_proof", "sha256": sha256},
            headers=platform.as_user("citizen"),
            timeout=10,
        )

    assert attach().status_code == 409  # the office holds the file
    actions.take(
        platform,
        "clerk.kochi",
        file["file_id"],
        "return_for_clarification",
        remarks="The ID copy is unreadable",
    )
    reply = attach()
    assert reply.status_code == 200, reply.text
    assert reply.json()["documents"]["parent_identity_proof"]["sha256"] == sha256
    assert reply.json()["timeline"][-1]["event_type"] == "DocumentAttached"


# -- fees ---------------------------------------------------------------------------


def _walk_to_decision(platform, file):
    """Take the file along its workflow until the next action decides it."""
    users = {"clerk": "clerk.kochi", "secretary": "secretary.kochi"}
    definition = citizen.definition_of(platform, file["service_code"])
    workflow = definition["workflow"]
    finals = {name for name, state in workflow["states"].items() if state.get("final")}
    while True:
        action = next(
            a
            for a in workflow["actions"]
            if file["state"] in a["from"]
            and a["name"] not in ("reject", "return_for_clarification")
        )
        user = users.get(file["waits_on"], f"{file['waits_on']}.kochi")
        if action["to"] in finals:
            return action["name"], user
        file = actions.take(platform, user, file["file_id"], action["name"], remarks="checked")


def test_an_unpaid_fee_holds_the_decision_until_a_signed_callback_records_it(platform):
    file = citizen.submit(platform, citizen.application(platform, "residence-certificate")).json()
    assert file["fee_due_paise"] > 0
    decision, decider = _walk_to_decision(platform, file)
    decide = lambda: requests.post(  # noqa: E731
        _url(platform, f"/files/{file['file_id']}/actions"),
        json={"action": decision, "remarks": "ok"},
        headers=platform.as_user(decider),
        timeout=10,
    )
    held = decide()
    assert held.status_code == 409 and "fee" in held.json()["detail"]

    started = requests.post(
        _url(platform, f"/files/{file['file_id']}/payments"),
        headers=platform.as_user("citizen"),
        timeout=10,
    )
    assert started.status_code == 201, started.text
    assert started.json()["amount_paise"] == file["fee_due_paise"]

    provider = FakePaymentProvider(platform.env["KSMART_PAYMENT_SECRET"].encode())
    payment_id = started.json()["payment_id"]
    body = provider.callback_body(file["file_id"], file["fee_due_paise"], payment_id)
    callback = lambda signature: requests.post(  # noqa: E731
        _url(platform, "/payments/callback"),
        data=body,
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
        timeout=10,
    )
    forged = FakePaymentProvider(b"x" * 64).sign(body)
    assert callback(forged).status_code == 401
    assert callback("").status_code == 401
    assert callback(provider.sign(body)).json()["recorded"] is True
    assert callback(provider.sign(body)).json()["recorded"] is False  # a repeat counts once

    decided = decide()
    assert decided.status_code == 200, decided.text
    assert decided.json()["paid_paise"] == file["fee_due_paise"]
    assert "pay_fee" in [entry["action"] for entry in decided.json()["timeline"]]


# -- file numbers -------------------------------------------------------------------


def test_files_get_human_readable_numbers_per_body_service_and_year(platform):
    submitted = [
        citizen.submit(platform, citizen.application(platform, "trade-licence")) for _ in range(3)
    ]
    numbers = [reply.json()["file_number"] for reply in submitted]
    pattern = re.compile(r"^KL-EKM-KOC/TL/20[0-9]{2}/([0-9]{6})$")
    assert all(pattern.match(number) for number in numbers), numbers
    sequence = [int(pattern.match(number).group(1)) for number in numbers]
    assert sequence == list(range(sequence[0], sequence[0] + 3))

    file_id = citizen.submit(platform, citizen.application(platform, "trade-licence")).json()[
        "file_id"
    ]
    wait_for(
        lambda: any(
            entry["file_id"] == file_id and entry["file_number"]
            for entry in requests.get(
                _url(platform, "/inbox"), headers=platform.as_user("clerk.kochi"), timeout=10
            ).json()["files"]
        ),
        message="numbered file in the clerk's inbox",
    )


def test_an_unknown_service_is_not_found(platform):
    body = {**citizen.application(platform), "service_code": f"no-such-{uuid.uuid4().hex[:6]}"}
    assert citizen.submit(platform, body).status_code == 404


def test_an_application_to_a_body_not_in_the_directory_or_not_offering_the_service_is_refused(
    platform,
):
    before = _event_count(platform)
    nowhere = {**citizen.application(platform), "local_body": "KL-ZZZ-NOPE"}
    reply = citizen.submit(platform, nowhere)
    assert reply.status_code == 422
    assert [(p["field"], p["code"]) for p in reply.json()["problems"]] == [
        ("local_body", "unknown_local_body")
    ]
    # Septic tank cleaning is a service of municipalities and corporations.
    body = citizen.application(platform, "septic-tank-cleaning")
    panchayat = requests.get(
        _url(platform, "/local-bodies"), params={"type": "grama_panchayat"}, timeout=10
    ).json()["local_bodies"][0]["code"]
    refused = citizen.submit(platform, {**body, "local_body": panchayat})
    assert [p["code"] for p in refused.json()["problems"]] == ["not_offered_here"]
    assert _event_count(platform) == before
