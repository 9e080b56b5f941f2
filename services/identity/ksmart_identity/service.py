"""The identity service's nameko entrypoints: thin, each delegating to a plain
function that tests can call without a container.

Events it emits (nameko events on the `identity.events` exchange, routing
key the event type, persistent, published with confirms): OtpRequested,
which carries a one-time code to the notifications service (never logged;
its `purpose` says whether it signs a citizen in or is their consent to an
application counter staff file for them, and then names the counter's
`office`), and UserRegistered when a citizen's first sign-in (or first
consent) registers them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from eventlet import tpool
from nameko.amqp.publish import UndeliverableMessage
from nameko.events import EventDispatcher

from ksmart_common.actor_assertions import GATEWAY
from ksmart_common.database import Database
from ksmart_common.domain.contacts import destinations_of, mask
from ksmart_common.domain.vocabulary import DEFAULT_LANGUAGE, LANGUAGES
from ksmart_common.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthenticated,
)
from ksmart_common.identifiers import is_uuid
from ksmart_common.messaging import OTP_REQUESTED
from ksmart_common.operations import Operations
from ksmart_common.rpc import rpc
from ksmart_identity import consent, directory, keys, otp, sessions, staff
from ksmart_identity.config import access_token_ttl_seconds
from ksmart_identity.signin import code_sign_in, password_sign_in, refresh
from ksmart_identity.users import get_user

# Refusals are the caller's, not the service's faults: logged as expected.
CALLER_ERRORS = (Unauthenticated, TooManyRequests, InvalidInput, Forbidden, NotFound)
USER_REGISTERED = "UserRegistered"


def now() -> datetime:
    return datetime.now(UTC)


class IdentityService:
    name = "identity"

    # Health, readiness and metrics on the operations port; times every worker.
    ops = Operations()

    db = Database()
    # mandatory: a code that no queue would take is refused by the broker
    # (see ksmart_common.messaging.OTP_QUEUE), and the request fails (503).
    send_code = EventDispatcher(mandatory=True)
    # Announcements nobody may be listening to yet (UserRegistered).
    announce = EventDispatcher()

    # -- signing in and out --------------------------------------------------

    @rpc(expected_exceptions=CALLER_ERRORS)
    def login(self, username: str, password: str) -> dict[str, Any]:
        """Officials, auditors, administrators: the token response, or
        Unauthenticated, or TooManyRequests while the account is locked."""
        return password_sign_in(
            self.db,
            username,
            password,
            ttl_seconds=access_token_ttl_seconds(),
            now=now(),
            # argon2 is CPU-bound for tens of milliseconds: on a real thread it
            # doesn't stall the container's other green threads.
            offload=tpool.execute,
        )

    @rpc(expected_exceptions=CALLER_ERRORS)
    def request_code(
        self,
        phone: str | None,
        email: str | None,
        client_address: str,
        language: str = "en",
    ) -> dict[str, Any]:
        """Send a citizen a one-time code (through the notifications service)."""
        destination, channel = otp.destination_of(phone, email)
        challenge = otp.request_code(
            self.db,
            destination,
            channel,
            client_address,
            now(),
            otp.OtpSettings.from_environment(),
            offload=tpool.execute,
        )
        self._send(challenge, language, {"purpose": otp.SIGN_IN})
        return {
            "challenge_id": challenge.challenge_id,
            "channel": channel,
            "sent_to": mask(destination),
            "expires_in": int((challenge.expires_at - now()).total_seconds()),
        }

    def _send(self, challenge: otp.Challenge, language: str, purpose: dict[str, Any]) -> None:
        """Hand the code to the notifications service (OtpRequested)."""
        try:
            self.send_code(
                OTP_REQUESTED,
                {
                    "challenge_id": challenge.challenge_id,
                    "channel": challenge.channel,
                    "destination": challenge.destination,
                    "code": challenge.code,
                    "language": language if language in LANGUAGES else DEFAULT_LANGUAGE,
                    "expires_at": challenge.expires_at.isoformat(),
                    **purpose,
                },
            )
        except UndeliverableMessage:
            raise ServiceUnavailable("codes cannot be sent just now; try again") from None

    # -- a citizen's consent to an application filed for them at a counter --

    @rpc(expected_exceptions=CALLER_ERRORS)
    def request_consent(
        self, phone: str | None, email: str | None, language: str, actor: dict[str, Any]
    ) -> dict[str, Any]:
        """Counter staff ask the citizen for a consent code (consent.py)."""
        challenge, office = consent.request_consent(
            self.db,
            phone,
            email,
            actor,
            now(),
            otp.OtpSettings.from_environment(),
            offload=tpool.execute,
        )
        self._send(challenge, language, {"purpose": otp.COUNTER_CONSENT, "office": office})
        return {
            "consent_id": challenge.challenge_id,
            "channel": challenge.channel,
            "sent_to": mask(challenge.destination),
            "expires_in": int((challenge.expires_at - now()).total_seconds()),
            "expires_at": challenge.expires_at.isoformat(),
        }

    # The applications service forwards the counter operator it was given.
    @rpc(expected_exceptions=CALLER_ERRORS, actor_signers=(GATEWAY, "applications"))
    def verify_consent(
        self, consent_id: str, code: str, actor: dict[str, Any], consume: bool
    ) -> dict[str, Any]:
        """For the applications service: whether the citizen consented to
        the operator's filing, who the citizen is (consume: the consent is
        used up) and who files (consent.verify_consent)."""
        answer = consent.verify_consent(
            self.db, consent_id, code, actor, now(), consume, offload=tpool.execute
        )
        if answer["registered"]:
            self.announce(
                USER_REGISTERED,
                {
                    "user_id": answer["citizen_id"],
                    "kind": "citizen",
                    "username": answer["username"],
                },
            )
        return {"citizen_id": answer["citizen_id"], "filed_by": answer["filed_by"]}

    @rpc(expected_exceptions=CALLER_ERRORS)
    def sign_in_with_code(self, challenge_id: str, code: str) -> dict[str, Any]:
        tokens, user, registered = code_sign_in(
            self.db,
            challenge_id,
            code,
            ttl_seconds=access_token_ttl_seconds(),
            now=now(),
            offload=tpool.execute,
        )
        if registered:
            self.announce(
                USER_REGISTERED,
                {"user_id": user["user_id"], "kind": "citizen", "username": user["username"]},
            )
        return tokens

    @rpc(expected_exceptions=CALLER_ERRORS)
    def refresh(self, refresh_token: str) -> dict[str, Any]:
        return refresh(self.db, refresh_token, access_token_ttl_seconds(), now())

    @rpc(expected_exceptions=CALLER_ERRORS)
    def logout(self, session_id: str) -> dict[str, bool]:
        return {"ended": sessions.revoke_session(self.db, session_id, now(), "logout")}

    @rpc
    def revoked_sessions(self) -> dict[str, Any]:
        """Sessions revoked within an access token's lifetime: the gateway
        polls this and refuses their tokens (older tokens expired anyway)."""
        since = now() - timedelta(seconds=access_token_ttl_seconds() + 60)
        return {"sessions": sessions.revoked_since(self.db, since)}

    @rpc
    def jwks(self) -> dict[str, Any]:
        """{"keys": [OKP JWK, ...]}: every public key a valid token may carry."""
        return keys.jwks(self.db)

    # -- staff (administrators) ----------------------------------------------

    @rpc(expected_exceptions=CALLER_ERRORS)
    def create_staff(self, user: dict[str, Any], actor: dict[str, Any]) -> dict[str, Any]:
        staff.require_administrator(actor)
        return staff.create_staff(
            self.db,
            user["username"],
            user["display_name"],
            user["kind"],
            user["roles"],
            user.get("local_body"),
            user.get("wards", []),
            user["password"],
            offload=tpool.execute,
        )

    @rpc(expected_exceptions=CALLER_ERRORS)
    def update_staff(
        self, user_id: str, changes: dict[str, Any], actor: dict[str, Any]
    ) -> dict[str, Any] | None:
        staff.require_administrator(actor)
        return staff.update_staff(self.db, user_id, now(), **changes)

    @rpc(expected_exceptions=CALLER_ERRORS)
    def list_staff(
        self, local_body: str | None, kind: str | None, actor: dict[str, Any]
    ) -> list[dict[str, Any]]:
        staff.require_administrator(actor)
        return staff.list_staff(self.db, local_body, kind)

    @rpc(expected_exceptions=CALLER_ERRORS)
    def colleagues(self, role: str, actor: dict[str, Any]) -> list[dict[str, Any]]:
        """The active officials of the caller's own local body who hold
        `role`: whom a file waiting on that role may be given to. Names
        only; an official outside any body has none."""
        local_body = actor.get("local_body")
        if local_body is None:
            return []
        return [
            {key: person[key] for key in ("user_id", "username", "display_name")}
            for person in staff.list_staff(self.db, local_body, "official")
            if role in person["roles"] and not person["disabled"]
        ]

    @rpc(expected_exceptions=CALLER_ERRORS)
    def get_official(self, user_id: str) -> dict[str, Any]:
        """An active official's roles and jurisdiction (for assigning files)."""
        user = get_user(self.db, user_id) if is_uuid(user_id) else None
        if user is None or user["kind"] != "official":
            raise NotFound(f"no official {user_id}")
        return {
            "actor_id": user["user_id"],
            "roles": user["roles"],
            "local_body": user["local_body"],
            "wards": user["wards"],
        }

    @rpc(expected_exceptions=CALLER_ERRORS)
    def contact(self, user_id: str) -> dict[str, Any]:
        """Where an active citizen is told about their files (for the
        notifications service): the phone or email they signed up with."""
        user = get_user(self.db, user_id) if is_uuid(user_id) else None
        if user is None or user["kind"] != "citizen":
            raise NotFound(f"no citizen {user_id}")
        return {"user_id": user["user_id"], "destinations": destinations_of(user["username"])}

    # -- the local-body directory (public) ------------------------------------

    @rpc(expected_exceptions=CALLER_ERRORS)
    def list_local_bodies(
        self,
        district: str | None = None,
        type: str | None = None,  # noqa: A002
    ) -> list[dict[str, Any]]:
        return directory.list_local_bodies(self.db, district, type)

    @rpc
    def list_districts(self) -> list[dict[str, Any]]:
        return directory.list_districts(self.db)

    @rpc(expected_exceptions=CALLER_ERRORS)
    def get_local_body(self, code: str) -> dict[str, Any]:
        body = directory.get_local_body(self.db, code)
        if body is None:
            raise NotFound(f"no local body {code!r}")
        return body

    @rpc
    def health(self) -> dict[str, str]:
        with self.db.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return {"status": "ok"}
