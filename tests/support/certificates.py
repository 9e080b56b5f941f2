"""Certificates for tests: sample forms, the catalogue's definitions, keys
made from a seed, and certificates issued and signed with them."""

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ksmart_common.domain import certificate as cert
from ksmart_common.keystore import SigningKey

DEFINITIONS = Path(__file__).parents[2] / "services/catalogue/ksmart_catalogue/definitions"
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


def definition(code):
    return json.loads((DEFINITIONS / code / "v1.json").read_text(encoding="utf-8"))


def file(code, form, number=NUMBER):
    return SimpleNamespace(
        file_id=FILE_ID,
        file_number=number,
        service_code=code,
        local_body="KL-EKM-KOC",
        form=form,
    )


def key(seed=1):
    return SigningKey.from_private_key(Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


def sign(key, payload):
    return cert.sign_certificate(payload, key.private_key, key.kid)


def issue(key, code="trade-licence", form=TRADE_FORM, issued_at=ISSUED_AT):
    payload = cert.build_certificate(
        file(code, form), definition(code), issued_at=issued_at, kid=key.kid
    )
    return sign(key, payload)


def now(day):
    return datetime.fromisoformat(day).replace(tzinfo=UTC)
