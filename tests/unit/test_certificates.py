"""Certificates: built from a file, signed, verified online and offline (the
QR code), rendered to PDF, and the keys that sign them."""

import base64
import json
import random
import re
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ksmart_common import certificates as cert
from ksmart_common import config, ed25519, migrations
from ksmart_common.canonical import canonical_json

DEFINITIONS = Path(cert.__file__).parents[2] / "services/catalogue/ksmart_catalogue/definitions"
ISSUED_AT = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
FILE_ID = "6f1c2f0e-5a8b-4f57-9a55-3f1d2b8c9e01"
NUMBER = "KL-EKM-KOC/TL/2026/000123"
TRADE_FORM = {
    "trade_name": "Sree Krishna Bakery and Tea Stall",
    "trade_category": "bakery",
    "licensee_name": "Anitha Krishnan",
    "building_number": "12/345 B",
    "ward_number": 14,
    "premises_ownership": "rented",
    "floor_area_sq_m": 48,
    "capital_investment_rupees": 450000,
    "employees": 4,
    "start_date": "2026-02-01",
    "phone": "+919847012345",
    "email": "anitha@example.com",
    "applicant_abroad": False,
}
BIRTH_FORM = {
    "child_name": "ആദിത്യ കൃഷ്ണൻ",
    "sex": "male",
    "date_of_birth": "2026-01-02",
    "place_of_birth": "hospital",
    "hospital_name": "ഗവൺമെന്റ് ജനറൽ ആശുപത്രി, എറണാകുളം",
    "birth_place_address": "ഗവൺമെന്റ് ജനറൽ ആശുപത്രി, ഹോസ്പിറ്റൽ റോഡ്, എറണാകുളം 682011",
    "mother_name": "ലക്ഷ്മി കൃഷ്ണൻ",
    "father_name": "കൃഷ്ണൻ നായർ",
    "parents_address": "തെക്കുംപുറം വീട്, കലൂർ, കൊച്ചി 682017",
    "registration_timing": "within_21_days",
    "informant_name": "Krishnan Nair",
    "informant_relationship": "father",
    "phone": "+919847012345",
    "email": "krishnan@example.com",
    "applicant_abroad": False,
}


def _definition(code):
    return json.loads((DEFINITIONS / code / "v1.json").read_text(encoding="utf-8"))


def _file(code, form, number=NUMBER):
    return SimpleNamespace(
        file_id=FILE_ID,
        file_number=number,
        service_code=code,
        local_body="KL-EKM-KOC",
        form=form,
    )


def _key(seed=1):
    return cert.CertificateKey.from_private_key(
        Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    )


def _issue(key, code="trade-licence", form=TRADE_FORM, issued_at=ISSUED_AT):
    payload = cert.build_certificate(
        _file(code, form), _definition(code), issued_at=issued_at, kid=key.kid
    )
    return key.sign(payload)


@pytest.fixture
def key():
    return _key()


@pytest.fixture
def keys(key):
    return {key.kid: key.public_key}


def _now(day):
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


# -- building the payload -------------------------------------------------------


def test_a_trade_licence_payload(key):
    payload = cert.build_certificate(
        _file("trade-licence", TRADE_FORM),
        _definition("trade-licence"),
        issued_at=ISSUED_AT,
        kid=key.kid,
    )
    assert payload == {
        "schema_version": 1,
        "certificate_number": NUMBER,
        "file_id": FILE_ID,
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
    for path in sorted(DEFINITIONS.glob("*/v*.json")):
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
            _file(definition["code"], form), definition, issued_at=ISSUED_AT, kid=key.kid
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
            _file("public-grievance", {}),
            _definition("public-grievance"),
            issued_at=ISSUED_AT,
            kid=key.kid,
        )
    with pytest.raises(ValueError, match="without a number"):
        cert.build_certificate(
            _file("trade-licence", TRADE_FORM, number=None),
            _definition("trade-licence"),
            issued_at=ISSUED_AT,
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
    document = _issue(key)
    assert set(document) == {"payload", "signature"}
    assert len(document["signature"]) == 86
    assert cert.verify_certificate(document, keys, now=_now("2026-06-01")) == []
    # Through JSON and the published JWKS, as a remote verifier sees it.
    again = json.loads(json.dumps(document))
    published = cert.public_keys_from_jwks({"keys": [key.public_jwk]})
    assert cert.verify_certificate(again, published, now=_now("2026-06-01")) == []


def test_the_signature_covers_the_canonical_json_of_the_payload(key):
    document = _issue(key)
    signature = base64.urlsafe_b64decode(document["signature"] + "==")
    key.public_key.verify(signature, canonical_json(document["payload"]))


def test_a_changed_payload_fails(key, keys):
    document = _issue(key)
    forged = {**document, "payload": {**document["payload"], "holder_name": "Someone Else"}}
    problems = cert.verify_certificate(forged, keys, now=_now("2026-06-01"))
    assert len(problems) == 1
    assert problems[0].startswith("bad_signature:")
    extended = {**document["payload"], "valid_until": "2099-12-31"}
    assert cert.verify_certificate({**document, "payload": extended}, keys)[0].startswith(
        "bad_signature:"
    )


def test_a_signature_by_another_key_fails(key, keys):
    impostor = _key(2)
    payload = dict(_issue(key)["payload"])
    # The impostor claims the genuine kid.
    forged = cert.sign_certificate(
        {**payload, "kid": impostor.kid}, impostor.private_key, impostor.kid
    )
    forged["payload"]["kid"] = key.kid
    problems = cert.verify_certificate(forged, keys, now=_now("2026-06-01"))
    assert [p.split(":")[0] for p in problems] == ["bad_signature"]


def test_an_unknown_kid_fails(keys):
    stranger = _key(3)
    document = _issue(stranger)
    problems = cert.verify_certificate(document, keys, now=_now("2026-06-01"))
    assert problems == [f"unknown_kid: {stranger.kid!r} is not a published certificate key"]


def test_a_signature_swapped_from_another_genuine_certificate_fails(key, keys):
    first = _issue(key)
    second = _issue(key, form={**TRADE_FORM, "licensee_name": "Biju Thomas"})
    assert cert.verify_certificate(second, keys, now=_now("2026-06-01")) == []
    swapped = {"payload": first["payload"], "signature": second["signature"]}
    problems = cert.verify_certificate(swapped, keys, now=_now("2026-06-01"))
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
    document = _issue(key)
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
    document = _issue(key)
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
    payload = _issue(key)["payload"]
    with pytest.raises(ValueError, match="names key"):
        cert.sign_certificate(payload, key.private_key, "another-kid")
    with pytest.raises(ValueError, match="certificate_number"):
        key.sign({**payload, "certificate_number": ""})
    without_kid = {name: value for name, value in payload.items() if name != "kid"}
    assert key.sign(without_kid)["payload"]["kid"] == key.kid


def test_expiry(key, keys):
    document = _issue(key)  # issued 2026-01-15 (IST), valid 365 days
    assert document["payload"]["valid_until"] == "2027-01-14"
    # The last day runs to midnight in Kerala: 18:29 UTC is 23:59 IST.
    assert cert.verify_certificate(document, keys, now=_now("2027-01-14T18:29:00")) == []
    problems = cert.verify_certificate(document, keys, now=_now("2027-01-14T18:31:00"))
    assert problems == ["expired: it was valid until 2027-01-14"]
    # An expired forgery reports both.
    forged = {**document, "payload": {**document["payload"], "holder_name": "X"}}
    problems = cert.verify_certificate(forged, keys, now=_now("2030-01-01"))
    assert [p.split(":")[0] for p in problems] == ["bad_signature", "expired"]
    with pytest.raises(ValueError, match="timezone-aware"):
        cert.verify_certificate(document, keys, now=datetime(2026, 1, 1))


def test_a_certificate_without_validity_never_expires(key, keys):
    document = _issue(key, "birth-certificate", BIRTH_FORM)
    assert document["payload"]["valid_until"] is None
    assert cert.verify_certificate(document, keys, now=_now("2090-01-01")) == []


# -- the QR code ------------------------------------------------------------------


def test_qr_round_trip_and_offline_verification(key, keys):
    document = _issue(key)
    text = cert.qr_text(document)
    assert re.fullmatch(r"KSC1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}", text)
    assert cert.parse_qr_text(text) == document
    assert cert.parse_qr_text(f"  {text}\n") == document
    # Offline, with nothing but the published JWKS.
    published = cert.public_keys_from_jwks(json.loads(json.dumps({"keys": [key.public_jwk]})))
    assert cert.verify_certificate(cert.parse_qr_text(text), published, _now("2026-02-01")) == []


@pytest.mark.parametrize(
    ("code", "form"), [("trade-licence", TRADE_FORM), ("birth-certificate", BIRTH_FORM)]
)
def test_qr_text_of_typical_certificates_fits_a_version_30_qr_code(key, code, form):
    text = cert.qr_text(_issue(key, code, form))
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
    payload = cert.build_certificate(_file("x", form), definition, issued_at=ISSUED_AT, kid=key.kid)
    assert len(cert.qr_text(key.sign(payload))) <= cert.QR_TEXT_BUDGET
    kept = len(payload["particulars"])
    assert 0 < kept < 8
    assert list(payload["particulars"]) == [f"answer_{i}" for i in range(kept)]


def test_a_tampered_qr_text_fails_to_parse_or_to_verify(key, keys):
    text = cert.qr_text(_issue(key))
    prefix, packed, signature = text.split(".")
    payload = json.loads(zlib.decompress(base64.urlsafe_b64decode(packed + "==")))
    payload["holder_name"] = "Someone Else"
    repacked = base64.urlsafe_b64encode(zlib.compress(canonical_json(payload))).rstrip(b"=")
    forged = f"{prefix}.{repacked.decode()}.{signature}"
    problems = cert.verify_certificate(cert.parse_qr_text(forged), keys, _now("2026-02-01"))
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


# -- the PDF -----------------------------------------------------------------------


def _page_text(pdf: bytes) -> str:
    """The decoded content streams of a PDF (reportlab writes them as
    ASCII85 over Flate), as text."""
    texts = []
    for stream in re.findall(rb"stream\r?\n(.*?)\s*endstream", pdf, re.S):
        try:
            data = stream.strip()
            if data.endswith(b"~>"):
                data = base64.a85decode(data, adobe=True)
            texts.append(zlib.decompress(data).decode("latin-1"))
        except (ValueError, zlib.error):
            continue
    return "\n".join(texts)


def test_pdf_is_deterministic_and_shows_the_certificate(key):
    document = _issue(key)
    fields = _definition("trade-licence")["fields"]
    pdf = cert.render_pdf(document, fields=fields)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert cert.render_pdf(document, fields=fields) == pdf
    text = _page_text(pdf)
    for shown in (
        f"({NUMBER}) Tj",
        "(Anitha Krishnan) Tj",
        "(Trade licence) Tj",
        "(Kind of trade) Tj",  # the field's label
        "(Bakery) Tj",  # the choice's label, not its value
        "(2027-01-14) Tj",
        "/api/v1/certificates/KL-EKM-KOC/TL/2026/000123,",
        key.kid,
    ):
        assert shown in text, shown
    # Dated by the issue time, not by when it was rendered.
    assert b"/CreationDate (D:20260115103000+00'00')" in pdf


def test_pdf_of_another_certificate_differs(key):
    one = cert.render_pdf(_issue(key))
    other = cert.render_pdf(_issue(key, form={**TRADE_FORM, "licensee_name": "Biju"}))
    assert one != other


@pytest.mark.parametrize("lang", ["en", "ml", "fr"])
def test_pdf_never_fails_for_want_of_a_malayalam_font(key, lang, monkeypatch, tmp_path):
    document = _issue(key, "birth-certificate", BIRTH_FORM)
    for font in (
        None,
        "/no/such/font.ttf",
        str(tmp_path),
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    ):
        if font is None:
            monkeypatch.delenv(cert.MALAYALAM_FONT_ENV, raising=False)
        else:
            monkeypatch.setenv(cert.MALAYALAM_FONT_ENV, font)
        pdf = cert.render_pdf(document, lang)
        assert pdf.startswith(b"%PDF-")
        assert NUMBER in _page_text(pdf)


def test_render_pdf_refuses_what_is_not_a_certificate(key):
    with pytest.raises(ValueError, match="not a certificate"):
        cert.render_pdf({"payload": {"certificate_number": NUMBER}, "signature": ""})


# -- keys --------------------------------------------------------------------------


def test_the_environment_key_is_read_from_pem(key):
    pem = ed25519.private_key_to_pem(key.private_key)
    one_line = {cert.SIGNING_KEY_ENV: pem.replace("\n", "\\n")}
    assert cert.CertificateKeys(one_line).environment_key() == key
    assert cert.CertificateKeys({cert.SIGNING_KEY_ENV: " "}).environment_key() is None
    assert cert.CertificateKeys({}).environment_key() is None


def test_jwk_and_kid(key):
    jwk = key.public_jwk
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["kid"] == key.kid
    assert ed25519.key_id(key.public_key) == key.kid
    keys = cert.public_keys_from_jwks({"keys": [jwk, {"kty": "RSA", "kid": "r"}, {"kid": "z"}]})
    assert list(keys) == [key.kid]


@pytest.fixture
def engine():
    """A throwaway database holding only the certificate_keys table."""
    admin_url = config.admin_database_url()
    name = f"kt{uuid.uuid4().hex[:10]}_certificates"
    migrations.ensure_database(admin_url, name)
    engine = sa.create_engine(migrations.url_for_database(admin_url, name))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(cert.CERTIFICATE_KEYS_DDL)
        yield engine
    finally:
        engine.dispose()
        migrations.drop_database(admin_url, name)


def _kids(jwks):
    return [jwk["kid"] for jwk in jwks["keys"]]


def test_stored_keys_are_generated_once_rotated_and_never_dropped(engine):
    keys = cert.CertificateKeys({})
    first = keys.active_key(engine)
    assert keys.active_key(engine) == first
    assert _kids(keys.public_jwks(engine)) == [first.kid]
    old_certificate = _issue(first)

    second = keys.rotate(engine)
    assert keys.active_key(engine) == second
    jwks = cert.public_jwks(engine, {})
    assert _kids(jwks) == [second.kid, first.kid]
    published = cert.public_keys_from_jwks(jwks)
    assert cert.verify_certificate(old_certificate, published, _now("2026-02-01")) == []
    assert cert.verify_certificate(_issue(second), published, _now("2026-02-01")) == []


def test_an_environment_key_signs_and_stays_published_after_it_is_replaced(engine):
    stored = cert.active_key(engine, {})
    given = _key(7)
    environ = {cert.SIGNING_KEY_ENV: ed25519.private_key_to_pem(given.private_key)}
    assert cert.active_key(engine, environ) == given
    signed_then = _issue(given)
    with engine.connect() as conn:
        pem = conn.execute(
            sa.text("SELECT private_key_pem FROM certificate_keys WHERE kid = :kid"),
            {"kid": given.kid},
        ).scalar_one()
    assert pem is None  # the environment's private key is never stored

    # The operator moves to a new key: the old one still verifies.
    replacement = _key(8)
    environ = {cert.SIGNING_KEY_ENV: ed25519.private_key_to_pem(replacement.private_key)}
    jwks = cert.public_jwks(engine, environ)
    assert _kids(jwks)[0] == replacement.kid
    assert set(_kids(jwks)) == {replacement.kid, given.kid, stored.kid}
    published = cert.public_keys_from_jwks(jwks)
    assert cert.verify_certificate(signed_then, published, _now("2026-02-01")) == []
    # Without an environment key, the stored key (never the recorded public
    # half) signs again.
    assert cert.active_key(engine, {}) == stored
