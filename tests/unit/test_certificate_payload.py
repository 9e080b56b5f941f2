"""The certificate's payload (ksmart_common.domain.certificate): built from
a file, signed, verified online and offline (the QR code)."""

import base64
import json
import random
import re
import zlib
from datetime import UTC, datetime

import pytest

from ksmart_common.canonical import canonical_json
from ksmart_common.domain import certificate as cert
from tests.support import certificates


@pytest.fixture
def key():
    return certificates.key()


@pytest.fixture
def keys(key):
    return {key.kid: key.public_key}


# -- building the payload -------------------------------------------------------


def test_a_trade_licence_payload(key):
    payload = cert.build_certificate(
        certificates.file("trade-licence", certificates.TRADE_FORM),
        certificates.definition("trade-licence"),
        issued_at=certificates.ISSUED_AT,
        kid=key.kid,
    )
    assert payload == {
        "schema_version": 1,
        "certificate_number": certificates.NUMBER,
        "file_id": certificates.FILE_ID,
        "service_code": "trade-licence",
        "title": {"en": "Trade licence", "ml": "വ്യാപാര ലൈസൻസ്"},
        "local_body": "KL-EKM-KOC",
        "holder_name": "Anitha Krishnan",
        # Definition order, the first eight; no phone, email or boolean.
        "particulars": {
            "trade_name": "Sree Krishna Bakery and Tea Stall",
            "trade_category": "bakery",
            "building_number": "12/345 B",
            "ward_number": 14,
            "premises_ownership": "rented",
            "floor_area_sq_m": 48,
            "capital_investment_rupees": 450000,
            "employees": 4,
        },
        "issued_at": "2026-01-15T10:30:00Z",
        "valid_until": "2027-01-14",
        "kid": key.kid,
    }
    assert cert.payload_problems(payload) == []


def test_every_catalogue_certificate_builds_a_well_formed_payload(key):
    built = 0
    for path in sorted(certificates.DEFINITIONS.glob("*/v*.json")):
        definition = json.loads(path.read_text(encoding="utf-8"))
        if not definition.get("certificate"):
            continue
        form = {
            spec["name"]: {"integer": 3, "boolean": True, "phone": "+919847012345"}.get(
                spec["type"], "x@example.com" if spec["type"] == "email" else "Some answer"
            )
            for spec in definition["fields"]
        }
        payload = cert.build_certificate(
            certificates.file(definition["code"], form),
            definition,
            issued_at=certificates.ISSUED_AT,
            kid=key.kid,
        )
        assert cert.payload_problems(payload) == [], definition["code"]
        assert payload["holder_name"], f"{definition['code']} has no holder field"
        assert 0 < len(payload["particulars"]) <= cert.MAX_PARTICULARS
        assert not any(cert._private(name) for name in payload["particulars"])
        built += 1
    assert built > 30


def test_no_certificate_without_a_certificate_section_or_a_file_number(key):
    with pytest.raises(ValueError, match="issues no certificate"):
        cert.build_certificate(
            certificates.file("public-grievance", {}),
            certificates.definition("public-grievance"),
            issued_at=certificates.ISSUED_AT,
            kid=key.kid,
        )
    with pytest.raises(ValueError, match="without a number"):
        cert.build_certificate(
            certificates.file("trade-licence", certificates.TRADE_FORM, number=None),
            certificates.definition("trade-licence"),
            issued_at=certificates.ISSUED_AT,
            kid=key.kid,
        )


def test_validity_counts_the_issue_day_in_kerala_time():
    # 20:00 UTC on 31 March is 01:30 IST on 1 April: issued on 1 April.
    late = datetime(2026, 3, 31, 20, 0, tzinfo=UTC)
    assert cert.valid_until(late, 365).isoformat() == "2027-03-31"
    assert cert.valid_until(late, 1).isoformat() == "2026-04-01"
    assert cert.valid_until(late, None) is None
    with pytest.raises(ValueError):
        cert.valid_until(late, 0)


# -- the holder and the particulars -----------------------------------------------


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"deceased_name": "Ravi", "applicant_name": "Meera"}, "Meera"),
        ({"child_name": "Aditya", "informant_name": "Krishnan"}, "Aditya"),
        ({"name": "Asha", "owner_name": "Biju"}, "Asha"),
        ({"owner_name": "Biju", "licensee_name": "Architect Co"}, "Biju"),
        ({"deceased_name": "Ravi", "relative_name": "Sita"}, "Ravi"),
        ({"applicant_name": "Sita", "husband_name": "Ravi"}, "Sita"),
        ({"husband_name": "Ravi", "wife_name": "Sita"}, "Ravi & Sita"),
        ({"husband_name": "Ravi"}, None),
        ({"licence_number": "TL-1", "trade_name": "Sree Bakery"}, "Sree Bakery"),
        ({"institution_name": "City Clinic", "person_in_charge": "Dr A"}, "City Clinic"),
        ({"applicant_name": "   ", "owner_name": " Biju "}, "Biju"),
        ({"applicant_name": 7, "child_name": "Aditya"}, "Aditya"),
        ({"phone": "+919847012345"}, None),
        ({}, None),
    ],
)
def test_holder_name_preference(form, expected):
    assert cert.holder_name(form) == expected


def test_particulars_without_definition_fields_go_by_sorted_names_and_value_types():
    form = {
        "zeta": "last",
        "applicant_name": "Meera",
        "alpha": "first",
        "count": 3,
        "agreed": True,
        "aadhaar_number": "123412341234",
        "bank_account_number": "0001",
        "mobile_phone": "+919847012345",
        "details": "x" * (cert.MAX_PARTICULAR_CHARS + 1),
        "blank": "  ",
        "nested": {"a": 1},
    }
    assert cert.particulars(form) == {"alpha": "first", "count": 3, "zeta": "last"}
    assert cert.particulars({f"f{i:02}": "v" for i in range(20)}) == {
        f"f{i:02}": "v" for i in range(cert.MAX_PARTICULARS)
    }


def test_particulars_follow_the_definition_types():
    fields = [
        {"name": "count", "type": "integer"},
        {"name": "when", "type": "date"},
        {"name": "kind", "type": "choice"},
        {"name": "agreed", "type": "boolean"},
        {"name": "contact", "type": "phone"},
        {"name": "mail", "type": "email"},
        {"name": "wrong", "type": "integer"},
    ]
    form = {
        "count": 2,
        "when": "2026-01-01",
        "kind": "shop",
        "agreed": True,
        "contact": "+919847012345",
        "mail": "a@example.com",
        "wrong": "2",
        "unlisted": "not a question",
    }
    assert cert.particulars(form, fields) == {"count": 2, "when": "2026-01-01", "kind": "shop"}


# -- signing and verifying ---------------------------------------------------------


def test_sign_and_verify_round_trip(key, keys):
    document = certificates.issue(key)
    assert set(document) == {"payload", "signature"}
    assert len(document["signature"]) == 86
    assert cert.verify_certificate(document, keys, now=certificates.now("2026-06-01")) == []
    # Through JSON and the published JWKS, as a remote verifier sees it.
    again = json.loads(json.dumps(document))
    published = cert.public_keys_from_jwks({"keys": [key.public_jwk]})
    assert cert.verify_certificate(again, published, now=certificates.now("2026-06-01")) == []


def test_the_signature_covers_the_canonical_json_of_the_payload(key):
    document = certificates.issue(key)
    signature = base64.urlsafe_b64decode(document["signature"] + "==")
    key.public_key.verify(signature, canonical_json(document["payload"]))


def test_a_changed_payload_fails(key, keys):
    document = certificates.issue(key)
    forged = {**document, "payload": {**document["payload"], "holder_name": "Someone Else"}}
    problems = cert.verify_certificate(forged, keys, now=certificates.now("2026-06-01"))
    assert len(problems) == 1
    assert problems[0].startswith("bad_signature:")
    extended = {**document["payload"], "valid_until": "2099-12-31"}
    assert cert.verify_certificate({**document, "payload": extended}, keys)[0].startswith(
        "bad_signature:"
    )


def test_a_signature_by_another_key_fails(key, keys):
    impostor = certificates.key(2)
    payload = dict(certificates.issue(key)["payload"])
    # The impostor claims the genuine kid.
    forged = cert.sign_certificate(
        {**payload, "kid": impostor.kid}, impostor.private_key, impostor.kid
    )
    forged["payload"]["kid"] = key.kid
    problems = cert.verify_certificate(forged, keys, now=certificates.now("2026-06-01"))
    assert [p.split(":")[0] for p in problems] == ["bad_signature"]


def test_an_unknown_kid_fails(keys):
    stranger = certificates.key(3)
    document = certificates.issue(stranger)
    problems = cert.verify_certificate(document, keys, now=certificates.now("2026-06-01"))
    assert problems == [f"unknown_kid: {stranger.kid!r} is not a published certificate key"]


def test_a_signature_swapped_from_another_genuine_certificate_fails(key, keys):
    first = certificates.issue(key)
    second = certificates.issue(
        key, form={**certificates.TRADE_FORM, "licensee_name": "Biju Thomas"}
    )
    assert cert.verify_certificate(second, keys, now=certificates.now("2026-06-01")) == []
    swapped = {"payload": first["payload"], "signature": second["signature"]}
    problems = cert.verify_certificate(swapped, keys, now=certificates.now("2026-06-01"))
    assert [p.split(":")[0] for p in problems] == ["bad_signature"]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (None, "malformed: a certificate is an object"),
        ("KSC1.abc.def", "malformed: a certificate is an object"),
        ({"signature": "x"}, "malformed: the payload is missing"),
        ({"payload": [], "signature": "x"}, "malformed: the payload is missing"),
    ],
)
def test_malformed_documents(document, expected, keys):
    problems = cert.verify_certificate(document, keys)
    assert problems[0].startswith(expected)


def test_every_problem_is_reported_at_once(key, keys):
    document = certificates.issue(key)
    payload = {
        **document["payload"],
        "schema_version": 2,
        "title": {"en": "Trade licence"},
        "particulars": {"ok": [1]},
        "issued_at": "2026-1-15T10:30:00Z",
        "valid_until": "20270114",
        "extra": 1,
    }
    del payload["local_body"]
    problems = cert.verify_certificate(
        {"payload": payload, "signature": "not base64!", "note": "x"}, keys
    )
    text = "\n".join(problems)
    for expected in (
        "unexpected members note",
        "lacks local_body",
        "unexpected members extra",
        "schema_version 2",
        "title must be",
        "particulars must",
        "issued_at must",
        "valid_until must",
        "signature is not 64 bytes",
    ):
        assert expected in text
    assert all(problem.startswith("malformed: ") for problem in problems)


def test_a_truncated_signature_is_malformed(key, keys):
    document = certificates.issue(key)
    malformed = ["malformed: the signature is not 64 bytes in base64url"]
    for signature in (
        document["signature"][:-4],
        document["signature"] + "\n",
        document["signature"] + "==",
        document["signature"].replace("_", "/").replace("-", "+"),
    ):
        if signature != document["signature"]:
            assert cert.verify_certificate({**document, "signature": signature}, keys) == malformed


def test_signing_refuses_a_malformed_payload_or_another_kid(key):
    payload = certificates.issue(key)["payload"]
    with pytest.raises(ValueError, match="names key"):
        cert.sign_certificate(payload, key.private_key, "another-kid")
    with pytest.raises(ValueError, match="certificate_number"):
        certificates.sign(key, {**payload, "certificate_number": ""})
    without_kid = {name: value for name, value in payload.items() if name != "kid"}
    assert certificates.sign(key, without_kid)["payload"]["kid"] == key.kid


def test_expiry(key, keys):
    document = certificates.issue(key)  # issued 2026-01-15 (IST), valid 365 days
    assert document["payload"]["valid_until"] == "2027-01-14"
    # The last day runs to midnight in Kerala: 18:29 UTC is 23:59 IST.
    assert (
        cert.verify_certificate(document, keys, now=certificates.now("2027-01-14T18:29:00")) == []
    )
    problems = cert.verify_certificate(document, keys, now=certificates.now("2027-01-14T18:31:00"))
    assert problems == ["expired: it was valid until 2027-01-14"]
    # An expired forgery reports both.
    forged = {**document, "payload": {**document["payload"], "holder_name": "X"}}
    problems = cert.verify_certificate(forged, keys, now=certificates.now("2030-01-01"))
    assert [p.split(":")[0] for p in problems] == ["bad_signature", "expired"]
    with pytest.raises(ValueError, match="timezone-aware"):
        cert.verify_certificate(document, keys, now=datetime(2026, 1, 1))


def test_a_certificate_without_validity_never_expires(key, keys):
    document = certificates.issue(key, "birth-certificate", certificates.BIRTH_FORM)
    assert document["payload"]["valid_until"] is None
    assert cert.verify_certificate(document, keys, now=certificates.now("2090-01-01")) == []


# -- the QR code ------------------------------------------------------------------


def test_qr_round_trip_and_offline_verification(key, keys):
    document = certificates.issue(key)
    text = cert.qr_text(document)
    assert re.fullmatch(r"KSC1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}", text)
    assert cert.parse_qr_text(text) == document
    assert cert.parse_qr_text(f"  {text}\n") == document
    # Offline, with nothing but the published JWKS.
    published = cert.public_keys_from_jwks(json.loads(json.dumps({"keys": [key.public_jwk]})))
    assert (
        cert.verify_certificate(cert.parse_qr_text(text), published, certificates.now("2026-02-01"))
        == []
    )


@pytest.mark.parametrize(
    ("code", "form"),
    [("trade-licence", certificates.TRADE_FORM), ("birth-certificate", certificates.BIRTH_FORM)],
)
def test_qr_text_of_typical_certificates_fits_a_version_30_qr_code(key, code, form):
    text = cert.qr_text(certificates.issue(key, code, form))
    # Version 30 at error correction M holds 1,370 bytes.
    assert len(text) < 1370
    assert len(text.encode("ascii")) == len(text)


def test_particulars_are_dropped_to_keep_the_qr_text_in_budget(key):
    # Long answers in Malayalam that compress poorly (random letters).
    rng = random.Random(0)
    letters = [chr(code) for code in range(0x0D15, 0x0D3A)]

    def text(length):
        return "".join(rng.choice(letters) for _ in range(length))

    form = {f"answer_{i}": text(cert.MAX_PARTICULAR_CHARS) for i in range(8)}
    form["applicant_name"] = text(300)
    definition = {"certificate": {"title": {"en": "T", "ml": "ടി"}}}
    payload = cert.build_certificate(
        certificates.file("x", form), definition, issued_at=certificates.ISSUED_AT, kid=key.kid
    )
    assert len(cert.qr_text(certificates.sign(key, payload))) <= cert.QR_TEXT_BUDGET
    kept = len(payload["particulars"])
    assert 0 < kept < 8
    assert list(payload["particulars"]) == [f"answer_{i}" for i in range(kept)]


def test_a_tampered_qr_text_fails_to_parse_or_to_verify(key, keys):
    text = cert.qr_text(certificates.issue(key))
    prefix, packed, signature = text.split(".")
    payload = json.loads(zlib.decompress(base64.urlsafe_b64decode(packed + "==")))
    payload["holder_name"] = "Someone Else"
    repacked = base64.urlsafe_b64encode(zlib.compress(canonical_json(payload))).rstrip(b"=")
    forged = f"{prefix}.{repacked.decode()}.{signature}"
    problems = cert.verify_certificate(
        cert.parse_qr_text(forged), keys, certificates.now("2026-02-01")
    )
    assert [p.split(":")[0] for p in problems] == ["bad_signature"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "KSC2.AAAA.AAAA",
        "KSC1.AAAA",
        "KSC1.!!!!.AAAA",
        "KSC1.AAAA.AAAA",  # not zlib
        "KSC1." + base64.urlsafe_b64encode(zlib.compress(b"[1, 2]")).decode() + ".AAAA",
        # Valid JSON but not canonical (white space): refused.
        "KSC1." + base64.urlsafe_b64encode(zlib.compress(b'{"a": 1}')).decode() + ".AAAA",
        # A zip bomb: refused before it inflates.
        "KSC1." + base64.urlsafe_b64encode(zlib.compress(b" " * 10_000_000)).decode() + ".AAAA",
    ],
)
def test_parse_qr_text_refuses_what_is_not_a_certificate(text):
    with pytest.raises(ValueError):
        cert.parse_qr_text(text)
