"""Certificates: what an approved file yields, signed so anyone can check it.

A certificate is a signed document `{"payload": {...}, "signature": "..."}`.
The payload (schema CERTIFICATE_SCHEMA_VERSION) is:

    schema_version      1
    certificate_number  the file's number, e.g. "KL-EKM-KOC/BR/2026/000123"
    file_id             the file it was issued on
    service_code        the catalogue service, e.g. "trade-licence"
    title               {"en", "ml"}: the definition's certificate title
    local_body          the issuing local body's code, e.g. "KL-EKM-KOC"
    holder_name         who or what it is issued to (see holder_name), or null
    particulars         a few form answers, field name -> string or number
                        (see particulars)
    issued_at           UTC, to the second: "2026-01-15T10:30:00Z"
    valid_until         the last day it is valid, "YYYY-MM-DD", or null
    kid                 the certificate key that signed it

The signature is Ed25519 over the canonical JSON of the payload
(ksmart_common.canonical), written base64url without padding. The key is a
certificate key (the applications service's certificate_keys), never an
access-token key: a certificate has to verify for years, long after token
keys have rotated. The PDF a citizen downloads is drawn by the gateway
(ksmart_gateway.certificate_pdf) from the signed document.

Dates are Kerala's (IST, UTC+05:30, no daylight saving): a certificate
issued at 01:00 IST on 1 April is dated 1 April, and `valid_for_days` days
counted from that day, the issue day included, end on `valid_until`; it is
expired from the next day on.

Offline verification: `qr_text` packs the whole signed document into the
QR code printed on the PDF, so a verifier holding only the published public
key (the published JWKS) can check a paper certificate with no network:

    KSC1.<base64url(zlib(canonical JSON of the payload))>.<base64url(signature)>

zlib is RFC 1950 ("deflate" in a browser's DecompressionStream). The verifier
inflates, checks the signature over the inflated bytes, and reads the payload.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ksmart_common import ed25519
from ksmart_common.canonical import canonical_json
from ksmart_common.domain.local_time import IST
from ksmart_common.domain.vocabulary import LANGUAGES
from ksmart_common.key_anchor import CERTIFICATE, KeyAnchor, public_keys

CERTIFICATE_SCHEMA_VERSION = 1
ISSUED_AT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
SIGNATURE_BYTES = 64

# Where a certificate can be checked online; the number goes in as it is
# (its slashes included), so the route needs a path converter.
VERIFY_PATH = "/api/v1/certificates/{number}"

# -- the payload -------------------------------------------------------------

# Who a certificate is issued to: the first of these the form answers with
# non-blank text. A person before an establishment; the person a record is
# about (child, deceased, registered person) before its informant, who is
# never on the list. A tuple names a joint holder ("A & B"), used only when
# every one of its fields is answered.
HOLDER_NAME_FIELDS: tuple[str | tuple[str, ...], ...] = (
    "applicant_name",
    "name",
    "child_name",
    "person_name",
    "registered_name",
    "deceased_name",
    "owner_name",
    "licensee_name",
    "keeper_name",
    "pensioner_name",
    "head_of_family_name",
    "advertiser_name",
    ("husband_name", "wife_name"),
    "institution_name",
    "trade_name",
    "factory_name",
    "lodge_name",
)

# The rule for particulars, in the definition's field order (the form's keys,
# sorted, when no definition fields are given):
# - the field is answered, and not by one of the holder-name fields used;
# - its type is string, date, choice (the value: a string) or integer (a
#   number); never phone, email or boolean; no documents (those are not
#   form answers at all);
# - its name contains none of PRIVATE_FIELD_MARKS: the QR code is readable by
#   anyone holding the paper, so identity numbers, bank details and contact
#   details stay off it;
# - a string is non-blank and at most MAX_PARTICULAR_CHARS long: a longer
#   free-text answer is left out, never cut (cutting could change its meaning);
# - at most MAX_PARTICULARS of them, the first in order; fewer if the QR code
#   would pass QR_TEXT_BUDGET (the last ones are dropped first).
PARTICULAR_TYPES = {"string": str, "date": str, "choice": str, "integer": int}
PRIVATE_FIELD_MARKS = (
    "phone",
    "email",
    "aadhaar",
    "bank_account",
    "ifsc",
    "local_contact",
    "coordinates",
    "applicant_abroad",
)
MAX_PARTICULARS = 8
MAX_PARTICULAR_CHARS = 120

# QR capacity in byte mode at error correction M: version 30 holds 1,370
# bytes, version 33 1,631, version 40 2,331. A payload built here keeps the
# QR text under this budget by dropping particulars (see build_certificate).
QR_PREFIX = "KSC1"
QR_TEXT_BUDGET = 1500
# A QR text's payload never inflates beyond this (a zip bomb is refused).
MAX_PAYLOAD_BYTES = 16_384

PAYLOAD_KEYS = frozenset(
    {
        "schema_version",
        "certificate_number",
        "file_id",
        "service_code",
        "title",
        "local_body",
        "holder_name",
        "particulars",
        "issued_at",
        "valid_until",
        "kid",
    }
)


class CertifiableFile(Protocol):
    """What a certificate takes from a file (ksmart_common.domain.file.FileState)."""

    file_id: str
    file_number: str | None
    service_code: str
    local_body: str
    form: Mapping[str, Any]


def holder_name(form: Mapping[str, Any]) -> str | None:
    """Who the certificate is issued to: the first field of
    HOLDER_NAME_FIELDS the form answers with text, else None."""
    used = _holder_fields(form)
    if not used:
        return None
    return " & ".join(form[name].strip() for name in used)


def _holder_fields(form: Mapping[str, Any]) -> tuple[str, ...]:
    for entry in HOLDER_NAME_FIELDS:
        names = (entry,) if isinstance(entry, str) else entry
        if all(_text(form.get(name)) for name in names):
            return names
    return ()


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def particulars(
    form: Mapping[str, Any],
    fields: Sequence[Mapping[str, Any]] | None = None,
    limit: int = MAX_PARTICULARS,
) -> dict[str, str | int]:
    """A few of the form's answers for the certificate, by the rule above.

    `fields`: the definition's field list (each with `name` and `type`), to
    go by its order and types; without it, the form's keys in sorted order,
    typed by their values."""
    skip = set(_holder_fields(form))
    if fields is not None:
        candidates = [(spec["name"], spec.get("type")) for spec in fields]
    else:
        candidates = [(name, None) for name in sorted(form)]
    chosen: dict[str, str | int] = {}
    for name, field_type in candidates:
        if len(chosen) >= limit:
            break
        if name in skip or name not in form or _private(name):
            continue
        value = form[name]
        if field_type is not None:
            wanted = PARTICULAR_TYPES.get(field_type)
            if wanted is None or type(value) is not wanted:
                continue
        elif type(value) not in (str, int):
            continue
        if isinstance(value, str) and (not value.strip() or len(value) > MAX_PARTICULAR_CHARS):
            continue
        chosen[name] = value
    return chosen


def _private(name: str) -> bool:
    lowered = name.lower()
    return any(mark in lowered for mark in PRIVATE_FIELD_MARKS)


def format_issued_at(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    return moment.astimezone(UTC).strftime(ISSUED_AT_FORMAT)


def parse_issued_at(text: str) -> datetime:
    if not isinstance(text, str) or not _ISSUED_AT.fullmatch(text):
        raise ValueError(f"{text!r} is not written YYYY-MM-DDTHH:MM:SSZ")
    return datetime.strptime(text, ISSUED_AT_FORMAT).replace(tzinfo=UTC)


def valid_until(issued_at: datetime, valid_for_days: int | None) -> date | None:
    """The last day a certificate issued at `issued_at` is valid: the issue
    day (in Kerala) counts as the first of `valid_for_days`."""
    if valid_for_days is None:
        return None
    if valid_for_days < 1:
        raise ValueError("valid_for_days must be at least 1")
    return issued_at.astimezone(IST).date() + timedelta(days=valid_for_days - 1)


def build_certificate(
    file: CertifiableFile,
    definition: Mapping[str, Any],
    *,
    issued_at: datetime,
    kid: str,
) -> dict[str, Any]:
    """The payload of the certificate for `file`, to be signed.

    `definition`: the catalogue definition the file was filed under (its
    `certificate` section, and its `fields` for the particulars' order and
    types). Raises ValueError if the service issues no certificate or the
    file has no number yet."""
    section = definition.get("certificate")
    if not section:
        raise ValueError(f"service {file.service_code} issues no certificate")
    if not file.file_number:
        raise ValueError("a file without a number cannot have a certificate")
    form = file.form
    payload: dict[str, Any] = {
        "schema_version": CERTIFICATE_SCHEMA_VERSION,
        "certificate_number": file.file_number,
        "file_id": str(file.file_id),
        "service_code": file.service_code,
        "title": {"en": section["title"]["en"], "ml": section["title"]["ml"]},
        "local_body": file.local_body,
        "holder_name": holder_name(form),
        "particulars": particulars(form, definition.get("fields")),
        "issued_at": format_issued_at(issued_at),
        "valid_until": _iso(valid_until(issued_at, section.get("valid_for_days"))),
        "kid": kid,
    }
    # Keep the QR code scannable: drop the last particulars until it fits.
    while payload["particulars"] and _qr_length(payload) > QR_TEXT_BUDGET:
        payload["particulars"] = dict(list(payload["particulars"].items())[:-1])
    return payload


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


# -- signing and verifying ---------------------------------------------------


_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_ISSUED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _b64decode(text: str) -> bytes:
    """Strict base64url without padding: anything else is a ValueError."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return ed25519.from_b64url(text)


def sign_certificate(
    payload: Mapping[str, Any], private_key: Ed25519PrivateKey, kid: str
) -> dict[str, Any]:
    """The signed document. The payload's `kid` is set to `kid` if absent,
    and must equal it if present; a malformed payload is a ValueError."""
    payload = dict(payload)
    if payload.setdefault("kid", kid) != kid:
        raise ValueError(f"the payload names key {payload['kid']!r}, not {kid!r}")
    problems = payload_problems(payload)
    if problems:
        raise ValueError("; ".join(problems))
    signature = private_key.sign(canonical_json(payload))
    return {"payload": payload, "signature": ed25519.b64url(signature)}


def verify_certificate(
    document: Any,
    public_keys: Mapping[str, Ed25519PublicKey],
    now: datetime | None = None,
) -> list[str]:
    """Every problem of a signed certificate; [] when it is genuine and valid.

    Each problem is "<code>: <sentence>", code one of `malformed`,
    `unknown_kid`, `bad_signature`, `expired`. `public_keys`: kid -> key,
    as public_keys_from_jwks gives. `now` (default: the current time)
    decides expiry."""
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not isinstance(document, Mapping):
        return ["malformed: a certificate is an object with a payload and a signature"]
    problems: list[str] = []
    unexpected = sorted(set(document) - {"payload", "signature"}, key=str)
    if unexpected:
        problems.append(f"malformed: unexpected members {', '.join(map(str, unexpected))}")
    payload = document.get("payload")
    if not isinstance(payload, Mapping):
        problems.append("malformed: the payload is missing or not an object")
        payload = None
    else:
        problems.extend(payload_problems(payload))

    signature: bytes | None = None
    try:
        signature = _b64decode(document.get("signature"))
        if len(signature) != SIGNATURE_BYTES:
            raise ValueError("wrong length")
    except ValueError:
        signature = None
        problems.append("malformed: the signature is not 64 bytes in base64url")

    kid = payload.get("kid") if payload is not None else None
    key = public_keys.get(kid) if isinstance(kid, str) else None
    if payload is not None and isinstance(kid, str) and key is None:
        problems.append(f"unknown_kid: {kid!r} is not a published certificate key")
    if key is not None and signature is not None:
        try:
            signed = canonical_json(dict(payload))
        except (TypeError, ValueError):
            problems.append("malformed: the payload is not JSON")
        else:
            try:
                key.verify(signature, signed)
            except InvalidSignature:
                problems.append(
                    f"bad_signature: the signature does not match the payload under key {kid!r}"
                )

    last_day = _valid_until_of(payload)
    if last_day is not None and now.astimezone(IST).date() > last_day:
        problems.append(f"expired: it was valid until {last_day.isoformat()}")
    return problems


def _valid_until_of(payload: Mapping[str, Any] | None) -> date | None:
    text = payload.get("valid_until") if isinstance(payload, Mapping) else None
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def payload_problems(payload: Mapping[str, Any]) -> list[str]:
    """Every way `payload` departs from the schema, as "malformed: ..."."""
    problems: list[str] = []

    def bad(sentence: str) -> None:
        problems.append(f"malformed: {sentence}")

    missing = sorted(PAYLOAD_KEYS - set(payload))
    if missing:
        bad(f"the payload lacks {', '.join(missing)}")
    unexpected = sorted(set(payload) - PAYLOAD_KEYS, key=str)
    if unexpected:
        bad(f"the payload has unexpected members {', '.join(map(str, unexpected))}")
    version = payload.get("schema_version", CERTIFICATE_SCHEMA_VERSION)
    if version != CERTIFICATE_SCHEMA_VERSION or type(version) is not int:
        bad(f"schema_version {version!r} is not {CERTIFICATE_SCHEMA_VERSION}")
    for name in ("certificate_number", "file_id", "service_code", "local_body", "kid"):
        if name in payload and not _text(payload[name]):
            bad(f"{name} must be non-blank text")
    if "title" in payload:
        title = payload["title"]
        if not (
            isinstance(title, Mapping)
            and set(title) == set(LANGUAGES)
            and all(_text(text) for text in title.values())
        ):
            bad("title must be an object of non-blank en and ml texts")
    if payload.get("holder_name") is not None and not _text(payload["holder_name"]):
        bad("holder_name must be non-blank text or null")
    if "particulars" in payload:
        found = payload["particulars"]
        if not isinstance(found, Mapping) or not all(
            isinstance(name, str) and type(value) in (str, int) for name, value in found.items()
        ):
            bad("particulars must map field names to texts or whole numbers")
    issued: datetime | None = None
    if "issued_at" in payload:
        try:
            issued = parse_issued_at(payload["issued_at"])
        except (TypeError, ValueError):
            bad("issued_at must be a UTC time written YYYY-MM-DDTHH:MM:SSZ")
    if payload.get("valid_until") is not None:
        last_day = _valid_until_of(payload)
        if last_day is None:
            bad("valid_until must be a date written YYYY-MM-DD, or null")
        elif issued is not None and last_day < issued.astimezone(IST).date():
            bad("valid_until is before the day of issue")
    return problems


def public_keys_from_jwks(
    jwks: Mapping[str, Any], anchor: KeyAnchor | None = None
) -> dict[str, Ed25519PublicKey]:
    """kid -> key for each Ed25519 key of a JWKS (others are ignored). An
    offline verifier holding the deployment's root public key passes it as
    `anchor`: then only the keys it endorses for certificates count."""
    return public_keys(jwks, CERTIFICATE, anchor)


# -- the QR code -------------------------------------------------------------


def qr_text(document: Mapping[str, Any]) -> str:
    """The signed document as QR text: "KSC1.<payload>.<signature>"."""
    packed = ed25519.b64url(zlib.compress(canonical_json(document["payload"]), 9))
    return f"{QR_PREFIX}.{packed}.{document['signature']}"


def _qr_length(payload: Mapping[str, Any]) -> int:
    signature_chars = -(-SIGNATURE_BYTES * 4 // 3)  # 86: base64url, no padding
    packed = ed25519.b64url(zlib.compress(canonical_json(payload), 9))
    return len(QR_PREFIX) + 1 + len(packed) + 1 + signature_chars


def parse_qr_text(text: str) -> dict[str, Any]:
    """The signed document a QR text carries; ValueError if it is not one.
    It is not verified here: pass the result to verify_certificate."""
    parts = text.strip().split(".")
    if len(parts) != 3 or parts[0] != QR_PREFIX:
        raise ValueError(f"not a certificate QR code (expected {QR_PREFIX}.<payload>.<signature>)")
    inflater = zlib.decompressobj()
    try:
        signed = inflater.decompress(_b64decode(parts[1]), MAX_PAYLOAD_BYTES + 1)
    except zlib.error as error:
        raise ValueError("the QR payload is not zlib data") from error
    if len(signed) > MAX_PAYLOAD_BYTES or inflater.unconsumed_tail or not inflater.eof:
        raise ValueError("the QR payload is too large or truncated")
    try:
        payload = json.loads(signed.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError("the QR payload is not JSON") from error
    if not isinstance(payload, dict) or canonical_json(payload) != signed:
        raise ValueError("the QR payload is not a canonical JSON object")
    _b64decode(parts[2])
    return {"payload": payload, "signature": parts[2]}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
