"""No secret lives in the repository: keys, tokens and passwords come from
the environment or a secret store, or are generated at run time (tests
make their own keys). Every file git tracks, or would add, is scanned; the
few things that look like secrets but are not are allowed by name, each
with the reason, and each allowance is checked to still be needed and
still be harmless."""

from __future__ import annotations

import base64
import math
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ksmart_common import ed25519

ROOT = Path(__file__).resolve().parents[2]
MAX_SCANNED_BYTES = 2 * 1024 * 1024

# Words that make a name a secret's name (SECRET_KEY, smtp_password, api_token...).
_SECRET_NAME = r"[A-Za-z0-9_.-]*(?:secret|passw(?:or)?d|pwd|token|key)[A-Za-z0-9_.-]*"

RULES: dict[str, re.Pattern[str]] = {
    "private key block": re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"),
    "service token": re.compile(
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}|xox[abprs]-[A-Za-z0-9-]{10,}"
        r"|AIza[0-9A-Za-z_-]{35}|sk_live_[0-9A-Za-z]{20,}|glpat-[0-9A-Za-z_-]{20})"
    ),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+"),
    # A URL with a user and a password in it, unless the password is a ${VARIABLE}.
    "password in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@'\"]+:(?!\$\{)([^\s@/'\"]+)@"),
    # NAME = "value", NAME: value, NAME=value, where the value looks random.
    "secret assigned": re.compile(
        rf"(?i)\b({_SECRET_NAME})[\"']?[ \t]*(?::|=|:=)[ \t]*[rbu]?[\"']?([A-Za-z0-9+/_=-]{{16,}})"
    ),
}

# Files whose very name says they hold a key or credentials.
SECRET_FILE_NAMES = re.compile(
    r"(?:^|/)(?:id_(?:rsa|dsa|ecdsa|ed25519)|\.env(?:\.[\w-]+)?|\.pgpass|\.netrc|\.npmrc"
    r"|credentials(?:\.json)?|[^/]+\.(?:pem|key|p12|pfx|jks|keystore|ppk|asc|gpg))$"
)
# A template of the variables to set, with no values, may be committed.
SECRET_FILE_NAMES_ALLOWED = {".env.example"}


# What documentation writes where a password goes: PASSWORD, <password>, ...
PLACEHOLDER = re.compile(r"[A-Z_]+|<[^>]*>|\.\.\.|\*+|x{3,}")

# Written in two parts here, so this file does not match its own rules.
PRIVATE_KEY_MARK = "-----BEGIN PRIVATE" + " KEY-----"
MADE_UP_JWT = "eyJhbGciOiJFZERTQSJ9" + "." + "eyJzdWIiOiJ1In0.c2lnbmF0dXJl"
LOCAL_BROKER = "amqp://guest" + ":guest@"


@dataclass(frozen=True)
class Allowed:
    path: str
    rule: str
    text: str  # a part of the matched text
    reason: str


ALLOWED = (
    Allowed(
        "tests/unit/test_signed_note.py",
        "secret assigned",
        "PeterNeumann+c74f20a3+",
        "a PUBLIC verifier key: the signed-note format's published example, whose note "
        "the test verifies; a public key is no secret",
    ),
    Allowed(
        "tests/unit/test_identity_config.py",
        "private key block",
        PRIVATE_KEY_MARK,
        "a truncated PEM (an Ed25519 DER header with no key bytes) to test the one-line "
        "form of KSMART_IDENTITY_SIGNING_KEY; it is no key at all (checked below)",
    ),
    Allowed(
        "tests/unit/test_identity_bearer.py",
        "JSON web token",
        MADE_UP_JWT,
        "a made-up token whose signature is the word 'signature', to test header parsing",
    ),
    Allowed(
        "tests/unit/test_identity_bearer.py",
        "secret assigned",
        MADE_UP_JWT[:20],
        "the same made-up token, assigned to the name TOKEN",
    ),
    Allowed(
        "common/ksmart_common/config.py",
        "password in a URL",
        LOCAL_BROKER,
        "RabbitMQ's built-in local account, which the broker accepts from localhost only: "
        "the development default, overridden by KSMART_AMQP_URI everywhere else",
    ),
    Allowed(
        "tests/support/broker.py",
        "password in a URL",
        LOCAL_BROKER,
        "the tests' local broker, RabbitMQ's localhost-only guest account",
    ),
    Allowed(
        "tests/support/own_infrastructure.py",
        "password in a URL",
        LOCAL_BROKER,
        "the tests' own local broker, RabbitMQ's localhost-only guest account",
    ),
)


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.text[:80]}"


def looks_random(value: str) -> bool:
    """A key, a token or a generated password, rather than a name or a word:
    long hex, or long text mixing cases and digits with high entropy."""
    if re.fullmatch(r"[0-9a-fA-F]{32,}", value):
        return True
    if len(value) < 20 or not (
        re.search(r"[a-z]", value) and re.search(r"[A-Z]", value) and re.search(r"[0-9]", value)
    ):
        return False
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 3.5


def scan_text(path: str, text: str) -> list[Finding]:
    findings = []
    for rule, pattern in RULES.items():
        for match in pattern.finditer(text):
            if rule == "secret assigned" and not looks_random(match.group(2)):
                continue
            if rule == "password in a URL" and PLACEHOLDER.fullmatch(match.group(1)):
                continue
            line = text.count("\n", 0, match.start()) + 1
            findings.append(Finding(path, line, rule, match.group(0)))
    return findings


def committed_files() -> list[str]:
    """Every file git tracks, and every new one it would add (not ignored)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"not a git checkout: {error}")
    return sorted({name for name in listed.decode().split("\0") if name})


def scan_repository() -> list[Finding]:
    findings = []
    for name in committed_files():
        path = ROOT / name
        if not path.is_file():
            continue  # deleted in the working tree
        content = path.read_bytes()[:MAX_SCANNED_BYTES]
        if b"\0" in content:
            continue  # binary (the one PNG, for instance)
        findings.extend(scan_text(name, content.decode("utf-8", errors="replace")))
    return findings


def allowance_for(finding: Finding) -> Allowed | None:
    return next(
        (
            allowed
            for allowed in ALLOWED
            if allowed.path == finding.path
            and allowed.rule == finding.rule
            and allowed.text in finding.text
        ),
        None,
    )


@pytest.fixture(scope="module")
def findings() -> list[Finding]:
    return scan_repository()


def test_no_secret_is_committed(findings):
    unexplained = [finding for finding in findings if allowance_for(finding) is None]
    assert not unexplained, "secrets (or what look like them) in the repository:\n" + "\n".join(
        map(str, unexplained)
    )


def test_no_key_or_credentials_file_is_committed():
    named = [
        name
        for name in committed_files()
        if SECRET_FILE_NAMES.search(name) and Path(name).name not in SECRET_FILE_NAMES_ALLOWED
    ]
    assert named == []


def test_every_allowance_is_still_needed(findings):
    used = {allowance_for(finding) for finding in findings}
    assert [allowed for allowed in ALLOWED if allowed not in used] == []


def test_the_allowed_private_key_block_is_no_key():
    allowed = next(a for a in ALLOWED if a.rule == "private key block")
    text = (ROOT / allowed.path).read_text()
    end = PRIVATE_KEY_MARK.replace("BEGIN", "END")
    blocks = re.findall(re.escape(PRIVATE_KEY_MARK) + r"(.*?)" + re.escape(end), text, re.S)
    assert blocks
    for body in blocks:
        pem = PRIVATE_KEY_MARK + body.replace("\\n", "\n") + end + "\n"
        with pytest.raises(ValueError):
            serialization.load_pem_private_key(pem.encode(), password=None)


def test_the_allowed_token_carries_no_real_signature():
    allowed = next(a for a in ALLOWED if a.rule == "JSON web token")
    signature = allowed.text.split(".")[2]
    assert base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)) == b"signature"


# -- the scanner finds what it looks for ---------------------------------------------
# The samples are made at run time, so this file holds none of them.


def _real_private_key_pem() -> str:
    return ed25519.private_key_to_pem(ed25519.generate_private_key())


def _random_token(length: int = 40) -> str:
    # Mixed case and digits, as generated secrets are; deterministic for the test.
    alphabet = "aZ3kQ9mP2xL7wR5tY8uB4nC6vD1"
    return "".join(alphabet[(index * 7 + index // 3) % len(alphabet)] for index in range(length))


@pytest.mark.parametrize(
    "rule, sample",
    [
        ("private key block", _real_private_key_pem()),
        ("AWS access key id", "aws_access_key_id = " + "AKIA" + "Q" * 8 + "7" * 8),
        ("service token", "token: " + "ghp_" + "a1B2" * 9),
        (
            "JSON web token",
            "Authorization: Bearer " + "eyJ" + "hbGciOiJIUzI1" + ".eyJ" + "zdWIi.x1",
        ),
        ("password in a URL", "KSMART_AMQP_URI=amqp://ksmart:" + "Pr0duct10n" + "@rabbitmq:5672/"),
        ("secret assigned", 'SECRET_KEY = "' + "9f" * 32 + '"'),
        ("secret assigned", "KSMART_PAYMENT_SECRET: " + _random_token()),
        ("secret assigned", 'smtp_password="' + _random_token(24) + '"'),
    ],
)
def test_the_scanner_finds_a_secret(rule, sample):
    assert rule in {finding.rule for finding in scan_text("sample", sample)}


@pytest.mark.parametrize(
    "sample",
    [
        "SIGNING_KEY_ENV = " + '"KSMART_IDENTITY_SIGNING_KEY"',
        '"KSMART_PAYMENT_SECRET": secrets.token_hex(32),',
        "KSMART_PAYMENT_SECRET: " + '"${KSMART_PAYMENT_SECRET:?set it}"',
        "amqp://ksmart:" + "${RABBITMQ_PASSWORD}" + "@rabbitmq:5672/",
        "postgresql://ksmart_identity:" + "PASSWORD" + "@db/identity",
        "key: KSMART_APPLICATIONS_DATABASE_URL",
        '"content_hash": "' + "ab" * 32 + '"',
        'idempotency_key = "walkthrough-request-number-one"',
    ],
)
def test_the_scanner_passes_what_is_no_secret(sample):
    assert scan_text("sample", sample) == []
