"""A citizen's consent to an application filed in their name at a counter.

Counter staff (a local body's clerks, Akshaya centres' operators:
ksmart_common.domain.roles.COUNTER_ROLES) ask for a one-time code to be sent
to the citizen's phone or email. The message names the counter's office and
says to give the code only to someone the citizen asked to file for them
(the notifications service's `counter_consent_code` template). The citizen
reads the code out; the counter files with it, and the applications service
asks here whether it is right.

A consent is a one-time-code challenge (otp.py) with the purpose
`counter_consent` and the operator who asked for it: single use, five
tries, fifteen minutes, like a sign-in code, and never a sign-in code (nor
the other way round). Only the operator who asked may use it; to anyone
else it does not exist. Rate limits: per destination together with sign-in
codes (one phone is not flooded, whoever asks), and per operator (the
per-address limit of sign-in, counted by the operator's id, since one
Akshaya centre's address serves many citizens a day).

The citizen is registered on the consent's first use, as a first sign-in
registers them: signing in later with the same phone or email finds the
files filed for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ksmart_common.domain.roles import counter_role
from ksmart_common.domain.vocabulary import LANGUAGES
from ksmart_common.errors import Forbidden, InvalidInput, Unauthenticated
from ksmart_identity import directory, otp
from ksmart_identity.users import (
    Offload,
    User,
    call_directly,
    find_or_register_citizen,
    get_user,
)

CONSENT_FIELD = "consent.consent_id"
CODE_FIELD = "consent.code"
# A local body as a citizen's consent message names its office: "Kochi
# Corporation", "കൊച്ചി കോർപ്പറേഷൻ" (the directory has the place's name).
BODY_KIND_NAMES = {
    "grama_panchayat": {"en": "Grama Panchayat", "ml": "ഗ്രാമപഞ്ചായത്ത്"},
    "block_panchayat": {"en": "Block Panchayat", "ml": "ബ്ലോക്ക് പഞ്ചായത്ത്"},
    "district_panchayat": {"en": "District Panchayat", "ml": "ജില്ലാ പഞ്ചായത്ത്"},
    "municipality": {"en": "Municipality", "ml": "മുനിസിപ്പാലിറ്റി"},
    "corporation": {"en": "Corporation", "ml": "കോർപ്പറേഷൻ"},
}


def operator_of(engine: sa.Engine, actor: Mapping[str, Any]) -> tuple[User, str]:
    """The active staff member acting, and the counter role they act in;
    Forbidden if they hold none (the gateway checked the token's roles;
    this is the account as it is now)."""
    user = get_user(engine, str(actor.get("actor_id")))
    role = counter_role(user["roles"]) if user is not None else None
    if user is None or user["kind"] == "citizen" or role is None:
        raise Forbidden("only counter staff file applications for citizens")
    return user, role


def office_of(engine: sa.Engine, user: User) -> dict[str, Any]:
    """The counter's office as a citizen is told of it: an official's local
    body (its code and its names from the directory), or an Akshaya
    operator's centre (its display name names it; no local body)."""
    if user["local_body"] is None:
        return {
            "local_body": None,
            "name": {"en": user["display_name"], "ml": user["display_name"]},
        }
    body = directory.get_local_body(engine, user["local_body"])
    if body is None:
        return {
            "local_body": user["local_body"],
            "name": dict.fromkeys(LANGUAGES, user["local_body"]),
        }
    kind = BODY_KIND_NAMES.get(body["type"], {})
    name = {
        language: " ".join(filter(None, (body["name"].get(language), kind.get(language))))
        for language in LANGUAGES
    }
    return {"local_body": user["local_body"], "name": name}


def request_consent(
    engine: sa.Engine,
    phone: str | None,
    email: str | None,
    actor: Mapping[str, Any],
    now: datetime,
    settings: otp.OtpSettings,
    offload: Offload = call_directly,
) -> tuple[otp.Challenge, dict[str, Any]]:
    """A new consent challenge and the office its message names."""
    operator, _role = operator_of(engine, actor)
    destination, channel = otp.destination_of(phone, email)
    challenge = otp.request_code(
        engine,
        destination,
        channel,
        f"operator:{operator['user_id']}",
        now,
        settings,
        offload,
        purpose=otp.COUNTER_CONSENT,
        requested_by=operator["user_id"],
    )
    return challenge, office_of(engine, operator)


def verify_consent(
    engine: sa.Engine,
    consent_id: str,
    code: str,
    actor: Mapping[str, Any],
    now: datetime,
    consume: bool,
    offload: Offload = call_directly,
) -> dict[str, Any]:
    """Whether the citizen consented: {citizen_id, registered, filed_by}.

    consume: use the consent up and register the citizen if new (the
    application is about to be stored); otherwise only confirm the code (the
    application has problems of its own: a right code stays usable, a wrong
    one counts). citizen_id is None when not consumed. InvalidInput names
    what is wrong with the consent (unknown, wrong, expired, used, void)."""
    operator, role = operator_of(engine, actor)
    try:
        destination = otp.verify_code(
            engine,
            consent_id,
            code,
            now,
            offload,
            purpose=otp.COUNTER_CONSENT,
            requested_by=operator["user_id"],
            consume=consume,
        )
    except Unauthenticated as error:
        unknown = error.detail.startswith("no such")
        raise InvalidInput(
            "the citizen's consent is not given",
            [{"field": CONSENT_FIELD if unknown else CODE_FIELD, "message": error.detail}],
        ) from None
    filed_by = {
        "actor_id": operator["user_id"],
        "role": role,
        "office": office_of(engine, operator),
        "consent_id": consent_id,
    }
    if not consume:
        return {"citizen_id": None, "registered": False, "filed_by": filed_by}
    channel = "sms" if destination.startswith("+") else "email"
    try:
        citizen, registered = find_or_register_citizen(engine, destination, channel)
    except Unauthenticated as error:
        raise InvalidInput(
            "the citizen's consent is not given", [{"field": CODE_FIELD, "message": error.detail}]
        ) from None
    return {
        "citizen_id": citizen["user_id"],
        "username": citizen["username"],
        "registered": registered,
        "filed_by": filed_by,
    }
