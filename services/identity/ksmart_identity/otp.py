"""One-time codes: how a citizen, at home or abroad, signs in.

A code is sent to a phone number (any country, E.164) or an email address.
It has 6 digits, is good for one sign-in, expires (15 minutes), and is stored
only as an argon2 hash: with a million possible codes a plain hash would be
reversed in moments from a stolen table. Five wrong tries void a challenge.

Requests are rate-limited per destination (nobody floods one phone with
codes) and per client address (nobody walks through many phones from one
place); the check and the insert run under a lock per destination, so two
requests at once cannot both slip under the limit.

The identity service never sends the code itself: it hands it to the
notifications service as an OtpRequested event. The code is never logged.

A code has a purpose: signing in, or a citizen's consent to an application
counter staff file in their name (ksmart_identity.consent). A consent's
challenge names the operator who asked for it. Neither kind of code
passes for the other, and a consent is checked only for its operator, so
a code a citizen reads out at a counter cannot sign the counter in as the
citizen, nor serve another operator.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ksmart_common.config import env
from ksmart_common.errors import InvalidInput, TooManyRequests, Unauthenticated
from ksmart_common.identifiers import is_uuid
from ksmart_identity.users import Offload, call_directly

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
EMAIL = re.compile(r"^[^@\s\x00-\x1f]{1,64}@[^@\s.\x00-\x1f]+(\.[^@\s.\x00-\x1f]+)+$")
CODE_DIGITS = 6
MAX_FAILED_ATTEMPTS = 5
# A code is tried at most five times before its challenge is void, so a cheap
# hash is enough online; these parameters make an offline search of all
# million codes cost minutes per challenge, longer than it lives.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
SIGN_IN = "sign_in"
COUNTER_CONSENT = "counter_consent"


@dataclass(frozen=True)
class OtpSettings:
    ttl_seconds: int = 15 * 60
    window_seconds: int = 15 * 60
    per_destination: int = 3
    per_client: int = 10

    @classmethod
    def from_environment(cls) -> OtpSettings:
        return cls(
            ttl_seconds=int(env("KSMART_OTP_TTL_SECONDS", "900")),
            window_seconds=int(env("KSMART_OTP_WINDOW_SECONDS", "900")),
            per_destination=int(env("KSMART_OTP_PER_DESTINATION", "3")),
            per_client=int(env("KSMART_OTP_PER_CLIENT", "10")),
        )


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    destination: str
    channel: str
    code: str  # only ever handed to the notifications service
    expires_at: datetime


def destination_of(phone: str | None, email: str | None) -> tuple[str, str]:
    """(destination, channel) from exactly one of phone and email, normalised:
    "+971 50 123 4567" -> "+971501234567"; emails lower-cased."""
    problems = []
    if (phone is None) == (email is None):
        problems.append({"field": "phone", "message": "give a phone number or an email, not both"})
    elif phone is not None:
        number = re.sub(r"[\s\-().]", "", phone)
        if E164.match(number):
            return number, "sms"
        problems.append(
            {
                "field": "phone",
                "message": "a phone number with its country code, such as +971501234567",
            }
        )
    else:
        address = email.strip().lower()
        if len(address) <= 254 and EMAIL.match(address):
            return address, "email"
        problems.append({"field": "email", "message": "an email address"})
    raise InvalidInput("the code cannot be sent", problems)


def request_code(
    engine: sa.Engine,
    destination: str,
    channel: str,
    client_address: str,
    now: datetime,
    settings: OtpSettings,
    offload: Offload = call_directly,
    purpose: str = SIGN_IN,
    requested_by: str | None = None,
) -> Challenge:
    """A new challenge, or TooManyRequests with the seconds to wait.

    client_address is whom the per-caller limit counts (an address, or a
    counter operator's id); the per-destination limit counts every code a
    destination was sent, whatever its purpose, so nobody floods one phone."""
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    code_hash = offload(_hasher.hash, code)
    since = now - timedelta(seconds=settings.window_seconds)
    with engine.begin() as conn:
        # The address first, then the destination, always in that order: two
        # requests from one address wait for each other whatever numbers
        # they ask for, so neither limit can be slipped in parallel.
        for key in (f"otp-client:{client_address}", f"otp:{destination}"):
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
        for column, value, limit, what in (
            ("destination", destination, settings.per_destination, "this destination"),
            ("client_address", client_address, settings.per_client, "your address"),
        ):
            recent = conn.execute(
                sa.text(
                    f"SELECT count(*), min(created_at) FROM otp_challenges"
                    f" WHERE {column} = :value AND created_at > :since"
                ),
                {"value": value, "since": since},
            ).one()
            if recent[0] >= limit:
                wait = recent[1] + timedelta(seconds=settings.window_seconds) - now
                raise TooManyRequests(
                    f"too many codes requested for {what}; try again later",
                    [{"field": column, "message": f"at most {limit} codes in a while"}],
                    max(1, int(wait.total_seconds()) + 1),
                )
        challenge_id = str(uuid.uuid4())
        expires_at = now + timedelta(seconds=settings.ttl_seconds)
        conn.execute(
            sa.text(
                "INSERT INTO otp_challenges (challenge_id, destination, channel, code_hash,"
                " client_address, created_at, expires_at, purpose, requested_by) VALUES (:id,"
                " :destination, :channel, :code_hash, :client, :now, :expires_at, :purpose,"
                " :requested_by)"
            ),
            {
                "id": challenge_id,
                "destination": destination,
                "channel": channel,
                "code_hash": code_hash,
                "client": client_address,
                "now": now,
                "expires_at": expires_at,
                "purpose": purpose,
                "requested_by": requested_by,
            },
        )
    return Challenge(challenge_id, destination, channel, code, expires_at)


def verify_code(
    engine: sa.Engine,
    challenge_id: str,
    code: str,
    now: datetime,
    offload: Offload = call_directly,
    purpose: str = SIGN_IN,
    requested_by: str | None = None,
    consume: bool = True,
) -> str:
    """The destination the code was sent to, if `code` is right; the code is
    used up (unless `consume` is false: a right code is then only
    confirmed). Unauthenticated otherwise, saying why (wrong, expired, used,
    void); a fifth wrong try voids the challenge. A challenge of another
    purpose, or (a consent) asked for by another operator, is no such
    challenge, and a try on it counts nothing."""
    unknown = Unauthenticated(f"no such {_NAMES[purpose]} was requested")
    if not is_uuid(challenge_id):
        raise unknown
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                "SELECT destination, code_hash, expires_at, failed_attempts, consumed_at,"
                " voided_at, purpose, requested_by FROM otp_challenges"
                " WHERE challenge_id = :id FOR UPDATE"
            ),
            {"id": challenge_id},
        ).one_or_none()
        if (
            row is None
            or row.purpose != purpose
            or (str(row.requested_by) if row.requested_by else None) != requested_by
        ):
            raise unknown
        if row.consumed_at is not None:
            raise Unauthenticated("this code was used already; ask for a new one")
        if row.voided_at is not None:
            raise Unauthenticated("too many wrong tries; ask for a new code")
        if now >= row.expires_at:
            raise Unauthenticated("the code has expired; ask for a new one")
        if isinstance(code, str) and offload(_matches, row.code_hash, code):
            if consume:
                conn.execute(
                    sa.text(
                        "UPDATE otp_challenges SET consumed_at = :now WHERE challenge_id = :id"
                    ),
                    {"now": now, "id": challenge_id},
                )
            return row.destination
        failed = row.failed_attempts + 1
        conn.execute(
            sa.text(
                "UPDATE otp_challenges SET failed_attempts = :failed,"
                " voided_at = CASE WHEN :failed >= :limit THEN CAST(:now AS timestamptz) END"
                " WHERE challenge_id = :id"
            ),
            {"failed": failed, "limit": MAX_FAILED_ATTEMPTS, "now": now, "id": challenge_id},
        )
    left = MAX_FAILED_ATTEMPTS - failed
    if left <= 0:
        raise Unauthenticated("too many wrong tries; ask for a new code")
    raise Unauthenticated(f"the code is wrong; {left} tries left")


_NAMES = {SIGN_IN: "sign-in code", COUNTER_CONSENT: "consent"}


def _matches(code_hash: str, code: str) -> bool:
    try:
        return _hasher.verify(code_hash, code)
    except (VerificationError, InvalidHashError):
        return False
