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
certificate key (CertificateKeys below), never an access-token key: a
certificate has to verify for years, long after token keys have rotated.

Dates are Kerala's (IST, UTC+05:30, no daylight saving): a certificate
issued at 01:00 IST on 1 April is dated 1 April, and `valid_for_days` days
counted from that day, the issue day included, end on `valid_until`; it is
expired from the next day on.

Offline verification: `qr_text` packs the whole signed document into the
QR code printed on the PDF, so a verifier holding only the published public
key (public_jwks) can check a paper certificate with no network:

    KSC1.<base64url(zlib(canonical JSON of the payload))>.<base64url(signature)>

zlib is RFC 1950 ("deflate" in a browser's DecompressionStream). The verifier
inflates, checks the signature over the inflated bytes, and reads the payload.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import re
import unicodedata
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ksmart_common import ed25519
from ksmart_common.canonical import canonical_json
from ksmart_common.local_time import IST

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


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_ISSUED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _b64decode(text: str) -> bytes:
    """Strict base64url without padding: anything else is a ValueError."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("not base64url") from error


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
    return {"payload": payload, "signature": _b64encode(signature)}


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
            and set(title) == {"en", "ml"}
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


def public_keys_from_jwks(jwks: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """kid -> key for each Ed25519 key of a JWKS (others are ignored)."""
    found: dict[str, Ed25519PublicKey] = {}
    for jwk in jwks.get("keys", ()):
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "kid" not in jwk:
            continue
        try:
            found[jwk["kid"]] = ed25519.public_key_from_jwk(jwk)
        except ValueError:
            continue
    return found


# -- the QR code -------------------------------------------------------------


def qr_text(document: Mapping[str, Any]) -> str:
    """The signed document as QR text: "KSC1.<payload>.<signature>"."""
    packed = _b64encode(zlib.compress(canonical_json(document["payload"]), 9))
    return f"{QR_PREFIX}.{packed}.{document['signature']}"


def _qr_length(payload: Mapping[str, Any]) -> int:
    signature_chars = -(-SIGNATURE_BYTES * 4 // 3)  # 86: base64url, no padding
    packed = _b64encode(zlib.compress(canonical_json(payload), 9))
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


# -- keys ----------------------------------------------------------------------

SIGNING_KEY_ENV = "KSMART_CERTIFICATE_SIGNING_KEY"

# The table of certificate keys, for a migration. Keys are never retired: a
# certificate must verify for as long as it is kept. A key given in the
# environment is recorded here with its public half only (private_key_pem
# NULL), so what it signed still verifies after the operator replaces it.
# The owning service's role needs SELECT and INSERT, nothing more.
CERTIFICATE_KEYS_DDL = """
CREATE TABLE certificate_keys (
    kid text PRIMARY KEY,
    -- NULL for a key given in KSMART_CERTIFICATE_SIGNING_KEY: never stored.
    private_key_pem text NULL,
    public_jwk jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON certificate_keys FROM PUBLIC;
"""

# Serialises "no key yet, create one" across replicas (see ksmart_identity.keys).
_FIRST_KEY_LOCK = int.from_bytes(b"ksm-crt", "big")


@dataclass(frozen=True)
class CertificateKey:
    # Equal when their kids are: the kid is a hash of the public key.
    kid: str
    private_key: Ed25519PrivateKey = field(compare=False, repr=False)

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey) -> CertificateKey:
        return cls(ed25519.key_id(private_key.public_key()), private_key)

    @classmethod
    def generate(cls) -> CertificateKey:
        return cls.from_private_key(Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def public_jwk(self) -> dict[str, str]:
        """The public half as an OKP JWK (RFC 8037)."""
        return ed25519.public_jwk(self.private_key, self.kid)

    def sign(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return sign_certificate(payload, self.private_key, self.kid)


class CertificateKeys:
    """Which key signs certificates, and every public key that ever did.

    Production gives the key in KSMART_CERTIFICATE_SIGNING_KEY (Ed25519 PEM; a
    literal "\\n" reads as a newline, for one-line env files); its public half
    is recorded in `certificate_keys` the first time it is used. Without it,
    the newest stored key signs, the first one generated on first use.
    `rotate` stores a newer key. No key is ever dropped from public_jwks."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._recorded: set[str] = set()
        self._public_keys: dict[str, Ed25519PublicKey] = {}

    def environment_key(self) -> CertificateKey | None:
        value = (os.environ if self._environ is None else self._environ).get(SIGNING_KEY_ENV, "")
        pem = value.replace("\\n", "\n").strip()
        return CertificateKey.from_private_key(ed25519.private_key_from_pem(pem)) if pem else None

    def active_key(self, engine: sa.Engine) -> CertificateKey:
        """The key that signs new certificates."""
        key = self.environment_key()
        if key is not None:
            if key.kid not in self._recorded:
                with engine.begin() as conn:
                    _record_public_key(conn, key)
                self._recorded.add(key.kid)
            return key
        with engine.connect() as conn:
            stored = _newest_stored_key(conn)
        if stored is not None:
            return stored
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": _FIRST_KEY_LOCK})
            # Another replica may have created it while we waited for the lock.
            return _newest_stored_key(conn) or _store_new_key(conn)

    def problems(self, document: Any, engine: sa.Engine) -> list[str]:
        """verify_certificate against every key that ever signed. Keys are
        only ever added, so the published keys are read once and again only
        when a certificate names a kid not seen yet: a check costs no query."""
        kid = document.get("payload", {}).get("kid") if isinstance(document, Mapping) else None
        if not self._public_keys or (isinstance(kid, str) and kid not in self._public_keys):
            self._public_keys = public_keys_from_jwks(self.public_jwks(engine))
        return verify_certificate(document, self._public_keys)

    def rotate(self, engine: sa.Engine) -> CertificateKey:
        """Store a new key, which signs from now on (unless the environment
        gives one); certificates signed before keep verifying."""
        with engine.begin() as conn:
            return _store_new_key(conn)

    def public_jwks(self, engine: sa.Engine) -> dict[str, Any]:
        """Every key a genuine certificate may be signed with, the active one
        first (made sure of first, so it is published before it signs)."""
        active = self.active_key(engine)
        keys = {active.kid: active.public_jwk}
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT kid, public_jwk FROM certificate_keys ORDER BY created_at DESC, kid"
                )
            )
            for kid, jwk in rows:
                keys.setdefault(kid, jwk)
        return {"keys": list(keys.values())}


def active_key(engine: sa.Engine, environ: Mapping[str, str] | None = None) -> CertificateKey:
    return CertificateKeys(environ).active_key(engine)


def public_jwks(engine: sa.Engine, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    return CertificateKeys(environ).public_jwks(engine)


def rotate_key(engine: sa.Engine) -> CertificateKey:
    return CertificateKeys().rotate(engine)


def _newest_stored_key(conn: sa.Connection) -> CertificateKey | None:
    row = conn.execute(
        sa.text(
            "SELECT kid, private_key_pem FROM certificate_keys "
            "WHERE private_key_pem IS NOT NULL ORDER BY created_at DESC, kid LIMIT 1"
        )
    ).one_or_none()
    if row is None:
        return None
    return CertificateKey(row.kid, ed25519.private_key_from_pem(row.private_key_pem))


def _store_new_key(conn: sa.Connection) -> CertificateKey:
    key = CertificateKey.generate()
    conn.execute(
        sa.text(
            "INSERT INTO certificate_keys (kid, private_key_pem, public_jwk, created_at) "
            "VALUES (:kid, :pem, CAST(:jwk AS jsonb), clock_timestamp())"
        ),
        {
            "kid": key.kid,
            "pem": ed25519.private_key_to_pem(key.private_key),
            "jwk": json.dumps(key.public_jwk),
        },
    )
    return key


def _record_public_key(conn: sa.Connection, key: CertificateKey) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO certificate_keys (kid, private_key_pem, public_jwk, created_at) "
            "VALUES (:kid, NULL, CAST(:jwk AS jsonb), clock_timestamp()) "
            "ON CONFLICT (kid) DO NOTHING"
        ),
        {"kid": key.kid, "jwk": json.dumps(key.public_jwk)},
    )


# -- the PDF -------------------------------------------------------------------

# A TrueType font with Malayalam glyphs: this file if given, else the first
# of MALAYALAM_FONT_FILES found under FONT_DIRS. Malayalam is drawn only with
# such a font AND the harfbuzz shaper (uharfbuzz) that reportlab uses for
# complex scripts: unshaped Malayalam puts vowel signs on the wrong side and
# breaks conjuncts, which is worse than leaving it out. Without either, the
# PDF is in English only and Malayalam characters in answers show as "?".
MALAYALAM_FONT_ENV = "KSMART_CERTIFICATE_MALAYALAM_FONT"
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
MALAYALAM_FONT_FILES = (
    "NotoSansMalayalam-Regular.ttf",
    "NotoSerifMalayalam-Regular.ttf",
    "Rachana-Regular.ttf",
    "Rachana.ttf",
    "Meera-Regular.ttf",
    "Meera.ttf",
    "Lohit-Malayalam.ttf",
    "AnjaliOldLipi-Regular.ttf",
    "AnjaliOldLipi.ttf",
)

LABELS: dict[str, dict[str, str]] = {
    "heading": {
        "en": "K-Smart: local self-government services, Kerala",
        "ml": "കെ-സ്മാർട്ട്: തദ്ദേശ സ്വയംഭരണ സേവനങ്ങൾ, കേരളം",
    },
    "certificate_number": {"en": "Certificate number", "ml": "സർട്ടിഫിക്കറ്റ് നമ്പർ"},
    "holder": {"en": "Name", "ml": "പേര്"},
    "local_body": {"en": "Local body", "ml": "തദ്ദേശ സ്ഥാപനം"},
    "issued_on": {"en": "Issued on", "ml": "നൽകിയ തീയതി"},
    "valid_until": {"en": "Valid until", "ml": "കാലാവധി"},
    "no_expiry": {"en": "Does not expire", "ml": "ബാധകമല്ല"},
    "particulars": {"en": "Particulars", "ml": "വിവരങ്ങൾ"},
    "verify": {
        "en": (
            "Verify this certificate at {url}, or offline: scan the QR code and check "
            "its Ed25519 signature with the published certificate key {kid}."
        ),
        "ml": (
            "ഈ സർട്ടിഫിക്കറ്റ് {url} എന്ന വിലാസത്തിൽ പരിശോധിക്കാം; അല്ലെങ്കിൽ QR കോഡ് "
            "സ്കാൻ ചെയ്ത്, പ്രസിദ്ധീകരിച്ച സർട്ടിഫിക്കറ്റ് കീ {kid} ഉപയോഗിച്ച് ഒപ്പ് "
            "ഓഫ്‌ലൈനായി പരിശോധിക്കാം."
        ),
    },
    "signed": {
        "en": "Digitally signed: it needs no handwritten signature or seal.",
        "ml": "ഡിജിറ്റലായി ഒപ്പിട്ടത്: കൈയൊപ്പോ സീലോ ആവശ്യമില്ല.",
    },
}

_LATIN = "Helvetica"
_LATIN_BOLD = "Helvetica-Bold"
_MALAYALAM_FONT_NAME = "KSmartMalayalam"


def _is_malayalam(char: str) -> bool:
    # The Malayalam block, plus the joiners Malayalam spelling uses.
    return "\u0d00" <= char <= "\u0d7f" or char in "\u200c\u200d"


@lru_cache(maxsize=4)
def _malayalam_font(path: str | None) -> str | None:
    """The registered name of a usable Malayalam font, or None."""
    try:
        from reportlab.pdfbase import pdfmetrics, ttfonts
        from reportlab.pdfbase.ttfonts import TTFont

        if ttfonts.uharfbuzz is None:
            return None
        candidates = [path] if path else _font_files()
        for candidate in candidates:
            try:
                tag = hashlib.sha256(candidate.encode("utf-8")).hexdigest()[:8]
                font = TTFont(f"{_MALAYALAM_FONT_NAME}-{tag}", candidate)
            except Exception:  # not TrueType (an OpenType/CFF font), unreadable, ...
                continue
            if all(ord(char) in font.face.charToGlyph for char in "കൈന്ൾ") and font.shapable:
                pdfmetrics.registerFont(font)
                return font.fontName
    except Exception:
        return None
    return None


def _font_files() -> list[str]:
    found: dict[str, str] = {}
    for root_dir in FONT_DIRS:
        for root, _dirs, files in sorted(os.walk(root_dir)):
            for name in sorted(files):
                found.setdefault(name, os.path.join(root, name))
    return [found[name] for name in MALAYALAM_FONT_FILES if name in found]


def malayalam_font_available() -> bool:
    """Whether render_pdf can write Malayalam on this machine."""
    return _malayalam_font(os.environ.get(MALAYALAM_FONT_ENV) or None) is not None


class _Writer:
    """Draws mixed English and Malayalam text: Malayalam runs in the
    Malayalam font (shaped), the rest in Helvetica."""

    def __init__(self, canvas: Any, malayalam: str | None) -> None:
        self.canvas = canvas
        self.malayalam = malayalam

    def runs(self, text: str, bold: bool) -> list[tuple[str, str]]:
        latin = _LATIN_BOLD if bold else _LATIN
        runs: list[tuple[str, str]] = []
        for char in unicodedata.normalize("NFC", text):
            if _is_malayalam(char) and self.malayalam:
                font = self.malayalam
            else:
                font = latin
                if not _latin_drawable(char):
                    char = "?"
            if runs and runs[-1][0] == font:
                runs[-1] = (font, runs[-1][1] + char)
            else:
                runs.append((font, char))
        return runs

    def _shaped(self, font: str, text: str, size: float) -> tuple[Any, float]:
        if font == self.malayalam:
            from reportlab.pdfbase.ttfonts import ShapedStr, shapeStr

            shaped = shapeStr(text, font, size)
            if isinstance(shaped, ShapedStr):
                width = sum(glyph.x_advance for glyph in shaped.__shapeData__) * size / 1000
                return shaped, width
        return text, self.canvas.stringWidth(text, font, size)

    def width(self, text: str, size: float, bold: bool = False) -> float:
        return sum(self._shaped(font, run, size)[1] for font, run in self.runs(text, bold))

    def draw(self, x: float, y: float, text: str, size: float, bold: bool = False) -> float:
        for font, run in self.runs(text, bold):
            shaped, width = self._shaped(font, run, size)
            self.canvas.setFont(font, size)
            self.canvas.drawString(x, y, shaped)
            x += width
        return x

    def draw_centred(self, x: float, y: float, text: str, size: float, bold: bool = False) -> None:
        self.draw(x - self.width(text, size, bold) / 2, y, text, size, bold)

    def wrap(self, text: str, size: float, max_width: float, bold: bool = False) -> list[str]:
        lines: list[str] = []
        line = ""
        for word in text.split():
            candidate = f"{line} {word}" if line else word
            if line and self.width(candidate, size, bold) > max_width:
                lines.append(line)
                line = word
            else:
                line = candidate
        return [*lines, line] if line else lines


def _latin_drawable(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return char.isprintable()


def _humanise(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def _particular_rows(
    found: Mapping[str, Any], fields: Sequence[Mapping[str, Any]] | None, lang: str
) -> Iterable[tuple[str, str]]:
    specs = {spec["name"]: spec for spec in fields or ()}
    for name, value in found.items():
        spec = specs.get(name, {})
        label = (spec.get("label") or {}).get(lang) or _humanise(name)
        text = str(value)
        for choice in spec.get("choices", ()):
            if choice.get("value") == value:
                text = (choice.get("label") or {}).get(lang) or text
        yield label, text


def render_pdf(
    document: Mapping[str, Any],
    lang: str = "en",
    *,
    fields: Sequence[Mapping[str, Any]] | None = None,
    base_url: str = "",
) -> bytes:
    """The printable certificate: an A4 PDF with its QR code.

    `lang` ("en" or "ml") is the language of the labels; Malayalam falls
    back to English where no Malayalam font is usable (see MALAYALAM_FONT_ENV).
    `fields`: the definition's fields, for the particulars' labels and
    choice labels (else the field names, humanised). `base_url` prefixes the
    verification path. The same arguments give the same bytes on the same
    machine: the PDF's dates are the issue time, and reportlab's invariant
    mode fixes its ID."""
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    payload = document.get("payload") if isinstance(document, Mapping) else None
    problems = payload_problems(payload) if isinstance(payload, Mapping) else ["no payload"]
    if problems:
        raise ValueError(f"not a certificate: {'; '.join(problems)}")
    assert payload is not None

    malayalam = _malayalam_font(os.environ.get(MALAYALAM_FONT_ENV) or None)
    lang = "ml" if lang == "ml" and malayalam else "en"

    def label(key: str) -> str:
        return LABELS[key][lang]

    issued = parse_issued_at(payload["issued_at"])
    pdf_date = issued.strftime("D:%Y%m%d%H%M%S+00'00'")
    number = payload["certificate_number"]

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=1, pageCompression=1, lang=lang)
    canvas.setDateFormatter(lambda *_: pdf_date)
    canvas.setTitle(f"{payload['title']['en']} {number}")
    canvas.setSubject(payload["title"]["en"])
    canvas.setAuthor(f"K-Smart, {payload['local_body']}")
    canvas.setCreator("K-Smart")
    writer = _Writer(canvas, malayalam)

    width, height = A4
    margin = 20 * mm
    text_width = width - 2 * margin
    y = height - margin

    writer.draw_centred(width / 2, y, label("heading"), 10)
    y -= 8 * mm
    canvas.setLineWidth(0.8)
    canvas.line(margin, y, width - margin, y)
    y -= 14 * mm
    for line in writer.wrap(payload["title"]["en"], 20, text_width, bold=True):
        writer.draw_centred(width / 2, y, line, 20, bold=True)
        y -= 9 * mm
    if malayalam:
        for line in writer.wrap(payload["title"]["ml"], 17, text_width):
            writer.draw_centred(width / 2, y, line, 17)
            y -= 9 * mm
    y -= 6 * mm

    label_width = 55 * mm
    value_width = text_width - label_width

    # Rows stop above the QR code; any more go on to a next page (only an
    # extreme form gets there: particulars are few and short).
    qr_size = 55 * mm
    lowest = margin + qr_size + 8 * mm

    def row(name: str, value: str, bold: bool = False) -> None:
        nonlocal y
        names = writer.wrap(name, 10, label_width - 4 * mm) or [""]
        values = writer.wrap(value, 11, value_width, bold) or [""]
        for index in range(max(len(names), len(values))):
            if y < lowest:
                canvas.showPage()
                y = height - margin
            if index < len(names):
                writer.draw(margin, y, names[index], 10)
            if index < len(values):
                writer.draw(margin + label_width, y, values[index], 11, bold)
            y -= 6 * mm
        y -= 1.5 * mm

    row(label("certificate_number"), number, bold=True)
    if payload["holder_name"] is not None:
        row(label("holder"), payload["holder_name"], bold=True)
    row(label("local_body"), payload["local_body"])
    row(label("issued_on"), issued.astimezone(IST).date().isoformat())
    row(label("valid_until"), payload["valid_until"] or label("no_expiry"))

    if payload["particulars"]:
        y -= 4 * mm
        writer.draw(margin, y, label("particulars"), 12, bold=True)
        y -= 7 * mm
        for name, value in _particular_rows(payload["particulars"], fields, lang):
            row(name, value)

    # The QR code, bottom right; the verification note beside it.
    widget = QrCodeWidget(qr_text(document), barLevel="M", barBorder=4)
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(
        qr_size, qr_size, transform=[qr_size / (x1 - x0), 0, 0, qr_size / (y1 - y0), 0, 0]
    )
    drawing.add(widget)
    renderPDF.draw(drawing, canvas, width - margin - qr_size, margin)

    note_width = text_width - qr_size - 8 * mm
    url = base_url.rstrip("/") + VERIFY_PATH.format(number=number)
    note = label("verify").format(url=url, kid=payload["kid"])
    note_y = margin + qr_size - 12 * mm
    for line in writer.wrap(note, 9, note_width):
        writer.draw(margin, note_y, line, 9)
        note_y -= 4.5 * mm
    note_y -= 2 * mm
    for line in writer.wrap(label("signed"), 9, note_width):
        writer.draw(margin, note_y, line, 9)
        note_y -= 4.5 * mm

    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
