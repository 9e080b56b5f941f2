"""The notifications service: tells citizens each step of their files, and
signs-in codes, by SMS, email and the in-app feed.

Three queues feed it, each acknowledged only after its effect is committed:

- `notifications.events` (the stored events): an event becomes a notice,
  the notice one message per channel, stored in one transaction (unique per
  event and channel, so a duplicate event adds nothing), then handed to
- `notifications.deliveries`: one hand-over per message; a provider failure
  goes to a retry queue (back-off) and finally to the dead-letter queue
  `notifications.deliveries.dead`, whence an operator sends it again;
- `notifications.otp` (identity's OtpRequested): a code is sent at once,
  retried while it is still valid, and never stored or logged: the log
  records where it went, not what it said.

A timer hands over messages held for quiet hours once they end, and again
any queued message whose hand-over was lost (a crash between the commit and
the publish): a message stored is a message sent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import eventlet
from kombu import Exchange, Queue
from nameko.extensions import DependencyProvider
from nameko.messaging import Consumer, Publisher
from nameko.rpc import RpcProxy
from nameko.timer import timer

from ksmart_common import config
from ksmart_common.consumer import consume_events
from ksmart_common.database import Database
from ksmart_common.domain.roles import ADMINISTRATOR, CITIZEN
from ksmart_common.envelope import from_json
from ksmart_common.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from ksmart_common.identifiers import is_uuid
from ksmart_common.logging import get_logger
from ksmart_common.messaging import IDENTITY_EVENTS_EXCHANGE, OTP_QUEUE, OTP_REQUESTED
from ksmart_common.operations import Operations
from ksmart_common.rpc import call, rpc
from ksmart_notifications import (
    contact_book,
    delivery,
    delivery_log,
    file_states,
    notices,
    preferences,
    rendering,
    routing,
)
from ksmart_notifications.channels import external_channels_from_environment
from ksmart_notifications.channels.sms import parse_receipt, receipt_secret_from_environment
from ksmart_notifications.delivery import RetryLater
from ksmart_notifications.queues import DELIVERIES_QUEUE, EVENTS_QUEUE

log = get_logger(__name__)

SWEEP_SECONDS = float(config.env("KSMART_NOTIFICATIONS_SWEEP_SECONDS", "30"))
# A queued message not tried for this long lost its hand-over: hand it over again.
STALE_AFTER = timedelta(seconds=float(config.env("KSMART_NOTIFICATIONS_STALE_SECONDS", "300")))
# A code is retried while valid, this many times at most, with doubling pauses.
CODE_ATTEMPTS = int(config.env("KSMART_CODE_ATTEMPTS", "4"))
CODE_BACKOFF_SECONDS = float(config.env("KSMART_CODE_BACKOFF_SECONDS", "2"))
MAX_PAGE = 100


def now() -> datetime:
    return datetime.now(UTC)


class Channels(DependencyProvider):
    """The outside channels configured in the environment; a configuration
    with problems stops the service at start, naming them all."""

    def setup(self) -> None:
        self.channels = external_channels_from_environment()

    def get_dependency(self, worker_ctx):
        return self.channels


class CodeConsumer(Consumer):
    """Consumes the one-time codes queue, which `ksmart-admin setup` declares
    with the codes' lifetime as TTL (so it is not declared again here), and
    acks a code once it was sent or given up on. A failure to even record a
    code puts it back after a pause: the queue's TTL ends that for good."""

    def __init__(self, **kwargs):
        queue = Queue(
            OTP_QUEUE,
            exchange=Exchange(IDENTITY_EVENTS_EXCHANGE, type="topic", durable=True),
            routing_key=OTP_REQUESTED,
            durable=True,
            no_declare=True,
        )
        super().__init__(queue=queue, requeue_on_error=True, **kwargs)


class NotificationsService:
    name = "notifications"

    # Health, readiness and metrics on the operations port; times every worker.
    ops = Operations()

    db = Database()
    channels = Channels()
    hand_over = Publisher()
    applications = RpcProxy("applications")
    catalogue = RpcProxy("catalogue")
    identity = RpcProxy("identity")

    # -- events become messages ----------------------------------------------

    @consume_events(EVENTS_QUEUE)
    def on_event(self, body: dict) -> None:
        envelope = from_json(body)
        with self.db.begin() as conn:
            # Every event is projected, so the next one finds no gap.
            file = file_states.state_after(conn, envelope, self._read_events, now())
            notice = (
                notices.notice_for(envelope, file, self._names(file))
                if notices.may_notify(envelope)
                else None
            )
            if notice is None:
                return
            destinations = self._destinations(conn, notice.recipient_id)
            wanted = preferences.load(conn, notice.recipient_id)
            source_id = str(envelope.event_id)
            planned = routing.messages_for(source_id, notice, destinations, wanted, now())
            delivery_log.record(conn, planned)
            queued = delivery_log.queued_of(conn, source_id)
        self._hand_over(queued)
        log.info(
            "notice planned",
            template=notice.template,
            stream_id=envelope.stream_id,
            stream_version=envelope.stream_version,
            channels=[message.channel for message in planned],
            correlation_id=envelope.metadata.get("correlation_id"),
        )

    def _read_events(self, stream_id: str, from_version: int, to_version: int):
        documents = call(self.applications.read_stream, stream_id, from_version, to_version)
        return [from_json(document) for document in documents]

    def _names(self, file) -> notices.Names:
        service = _cached(
            ("definition", file.definition_hash),
            lambda: call(self.catalogue.get_definition, file.definition_hash)["name"],
        )
        body = _cached(
            ("local_body", file.local_body),
            lambda: call(self.identity.get_local_body, file.local_body)["name"],
        )
        return notices.Names(service=service, local_body=body)

    def _destinations(self, conn, user_id: str) -> dict[str, str]:
        """Where the citizen is reached: asked of identity the first time
        (in the caller's transaction, which keeps the answer), then read."""
        if not is_uuid(user_id):
            return {}
        known = contact_book.known(conn, user_id)
        if known is not None:
            return known
        try:
            destinations = call(self.identity.contact, user_id)["destinations"]
        except NotFound:
            # No active citizen: the feed still records the notice.
            return {}
        contact_book.remember(conn, user_id, destinations, now())
        return destinations

    def _hand_over(self, message_ids: list[str]) -> None:
        for message_id in message_ids:
            self.hand_over({"message_id": message_id}, routing_key=DELIVERIES_QUEUE, mandatory=True)

    # -- messages are delivered -----------------------------------------------

    @consume_events(DELIVERIES_QUEUE, routing_keys=(), pass_attempts=True)
    def deliver(self, body: dict, failed_attempts: int, last_attempt: bool) -> None:
        delivery.attempt(self.db, self.channels, body["message_id"], last_attempt, now)

    @timer(interval=SWEEP_SECONDS)
    def sweep(self) -> None:
        moment = now()
        with self.db.begin() as conn:
            due = delivery_log.release_due(conn, moment)
            stale = delivery_log.stale_queued(conn, moment - STALE_AFTER, moment)
        if due or stale:
            log.info("messages handed over by the sweeper", due=len(due), stale=len(stale))
        self._hand_over(due + stale)

    # -- one-time codes ---------------------------------------------------------

    @CodeConsumer.decorator()
    def on_code(self, body: dict) -> None:
        expires_at = datetime.fromisoformat(body["expires_at"])
        channel, destination = body["channel"], body["destination"]
        if now() >= expires_at:
            log.info("expired code not sent", channel=channel)
            return
        # A sign-in code, or a citizen's consent to a counter's filing
        # (which names the counter's office); older messages carry no purpose.
        template_name = routing.CODE_TEMPLATES.get(body.get("purpose"), routing.ONE_TIME_CODE)
        message = routing.code_message(
            body["challenge_id"],
            channel,
            destination,
            body.get("language", "en"),
            now(),
            template_name,
        )
        try:
            with self.db.begin() as conn:
                delivery_log.record(conn, [message])
        except Exception:
            eventlet.sleep(CODE_BACKOFF_SECONDS)  # then back in the queue: no hot loop
            raise

        def text(row) -> tuple[str | None, str]:
            minutes = max(1, int((expires_at - now()).total_seconds() // 60))
            values = {"code": body["code"], "minutes": str(minutes)}
            if template_name == routing.COUNTER_CONSENT_CODE:
                names = body["office"]["name"]
                values["office"] = names.get(row.language) or names["en"]
            rendered = rendering.render(template_name, row.language, values)
            if channel == "email":
                return rendered.subject, rendered.text
            return None, rendered.sms

        pause = CODE_BACKOFF_SECONDS
        for attempt_number in range(1, CODE_ATTEMPTS + 1):
            last = attempt_number == CODE_ATTEMPTS or now() + timedelta(seconds=pause) >= expires_at
            try:
                delivery.attempt(
                    self.db, self.channels, message.message_id, last, now, text, gave_up="failed"
                )
                return
            except RetryLater:
                if last:
                    log.warning("code not delivered before giving up", channel=channel)
                    return
            eventlet.sleep(pause)
            pause *= 2

    # -- the citizen's feed and preferences -----------------------------------------

    @rpc(expected_exceptions=(InvalidInput, Forbidden))
    def feed(
        self,
        actor: dict,
        limit: int = 20,
        cursor: str | None = None,
        unread_only: bool = False,
    ) -> dict[str, Any]:
        citizen = _citizen(actor)
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(
                "limit out of range", [{"field": "limit", "message": f"1 to {MAX_PAGE}"}]
            )
        with self.db.connect() as conn:
            return delivery_log.feed(conn, citizen, limit, cursor, unread_only)

    @rpc(expected_exceptions=(InvalidInput, Forbidden))
    def mark_read(self, actor: dict, notification_ids: list[str] | None = None) -> dict[str, int]:
        citizen = _citizen(actor)
        if notification_ids is not None and not all(map(is_uuid, notification_ids)):
            raise InvalidInput(
                "not notification ids",
                [{"field": "notification_ids", "message": "a list of notification ids (UUIDs)"}],
            )
        with self.db.begin() as conn:
            marked = delivery_log.mark_read(conn, citizen, notification_ids, now())
            return {"marked": marked, "unread_count": delivery_log.unread_count(conn, citizen)}

    @rpc(expected_exceptions=(InvalidInput, Forbidden))
    def preferences(self, actor: dict) -> dict[str, Any]:
        citizen = _citizen(actor)
        available = self._available(citizen)
        with self.db.connect() as conn:
            return preferences.load(conn, citizen).to_dict(available)

    @rpc(expected_exceptions=(InvalidInput, Forbidden))
    def update_preferences(self, actor: dict, changes: dict[str, Any]) -> dict[str, Any]:
        citizen = _citizen(actor)
        available = self._available(citizen)
        updated = preferences.update(self.db, citizen, changes, available, now())
        return updated.to_dict(available)

    def _available(self, citizen: str) -> tuple[str, ...]:
        with self.db.begin() as conn:
            destinations = self._destinations(conn, citizen)
        return tuple(c for c in preferences.EXTERNAL_CHANNELS if c in destinations)

    # -- the administrators' delivery log ----------------------------------------------

    @rpc(expected_exceptions=(InvalidInput, Forbidden))
    def search_messages(
        self, actor: dict, filters: dict[str, Any], limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        _administrator(actor)
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(
                "limit out of range", [{"field": "limit", "message": f"1 to {MAX_PAGE}"}]
            )
        with self.db.connect() as conn:
            return delivery_log.search(conn, filters, limit, cursor)

    @rpc(expected_exceptions=(InvalidInput, Forbidden, NotFound))
    def resend(self, actor: dict, message_id: str) -> dict[str, Any]:
        """Send again a message that did not arrive (dead, failed or undelivered)."""
        _administrator(actor)
        with self.db.begin() as conn:
            shown = delivery_log.requeue(conn, message_id, now())
        self._hand_over([message_id])
        log.info("message resent", message_id=message_id, by=actor.get("actor_id"))
        return shown

    # -- the SMS provider's delivery receipts ---------------------------------------------

    @rpc(expected_exceptions=(InvalidInput, Unauthenticated, NotFound))
    def sms_receipt(self, body: str, signature: str | None) -> dict[str, bool]:
        secret = receipt_secret_from_environment()
        if not secret:
            raise Unauthenticated("delivery receipts are not accepted: no receipt secret is set")
        receipt = parse_receipt(body.encode("utf-8"), signature, secret)
        with self.db.begin() as conn:
            known = delivery_log.record_receipt(
                conn,
                "sms",
                receipt.provider_message_id,
                receipt.reference,
                receipt.status == "delivered",
                now(),
            )
        if not known:
            # A provider retries a receipt that is not accepted: by then the
            # message it names may have been recorded as sent.
            raise NotFound(f"no sent message {receipt.provider_message_id}")
        return {"recorded": True}

    @rpc
    def health(self) -> dict[str, str]:
        with self.db.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok"}


def _citizen(actor: dict) -> str:
    if CITIZEN not in actor.get("roles", ()):
        raise Forbidden("only a citizen has a notification feed")
    return str(actor["actor_id"])


def _administrator(actor: dict) -> None:
    if ADMINISTRATOR not in actor.get("roles", ()):
        raise Forbidden("only an administrator reads the delivery log")


# Names are immutable per definition hash and change rarely per local body:
# one process keeps what it has looked up.
_NAMES: dict[tuple[str, str], Any] = {}
_NAMES_LIMIT = 5_000


def _cached(key: tuple[str, str], fetch):
    if key not in _NAMES:
        if len(_NAMES) >= _NAMES_LIMIT:
            _NAMES.clear()
        _NAMES[key] = fetch()
    return _NAMES[key]
