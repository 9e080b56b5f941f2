"""The delivery log on a real database, as the service's own least-privileged
role: one attempt per message however many workers are handed it, what
each outcome records, resends, receipts, the feed's pages and the search."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ksmart_common.errors import InvalidInput, NotFound
from ksmart_notifications import delivery, delivery_log, routing
from ksmart_notifications.channels.base import DeliveryFailed, SendResult
from ksmart_notifications.notices import Notice
from ksmart_notifications.preferences import Preferences
from tests.support.databases import fresh_service_database
from tests.support.waiting import wait_for

NOW = datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
PHONE = "+971501234567"
ENGINES: list[sa.Engine] = []


class FakeSms:
    """A provider that answers as told, counting what it was given."""

    name = "sms"

    def __init__(self, failure: DeliveryFailed | None = None, pause: threading.Event | None = None):
        self.failure = failure
        self.pause = pause
        self.sent: list[str] = []

    def send(self, message):
        if self.pause is not None:
            self.pause.wait(5)
        if self.failure is not None:
            raise self.failure
        self.sent.append(message.message_id)
        return SendResult(f"provider-{message.message_id}")


@pytest.fixture(scope="module")
def engine():
    with fresh_service_database("notifications") as database:
        engine = sa.create_engine(database.service_url, pool_size=5)
        ENGINES[:] = [engine]
        yield engine
        engine.dispose()


def _planned(engine, recipient=None, template="application_received") -> list[str]:
    """A notice's messages, stored; returns [feed id, sms id]."""
    recipient = recipient or str(uuid.uuid4())
    file_id = str(uuid.uuid4())
    notice = Notice(
        template,
        file_id,
        f"KL-EKM-KOC/BR/2026/{uuid.uuid4().int % 1_000_000:06d}",
        recipient,
        {
            "service_name": "Birth registration",
            "file_number": "KL-EKM-KOC/BR/2026/000001",
            "local_body_name": "Kochi",
            "due_date": NOW,
        },
    )
    messages = routing.messages_for(str(uuid.uuid4()), notice, {"sms": PHONE}, Preferences(), NOW)
    with engine.begin() as conn:
        delivery_log.record(conn, messages)
        delivery_log.record(conn, messages)  # a duplicate adds nothing
    return [message.message_id for message in messages]


def _row(engine, message_id):
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT * FROM messages WHERE message_id = :m"), {"m": message_id}
        ).one()


def test_two_workers_handed_one_message_send_it_once(engine):
    _, sms_id = _planned(engine)
    held = threading.Event()
    provider = FakeSms(pause=held)
    outcomes = []

    def worker():
        outcomes.append(delivery.attempt(engine, {"sms": provider}, sms_id, False, lambda: NOW))

    first = threading.Thread(target=worker)
    first.start()
    # The second worker comes while the first is still sending: it skips.
    second_outcome = delivery.attempt(engine, {"sms": FakeSms()}, sms_id, False, lambda: NOW)
    held.set()
    first.join(10)
    assert sorted([second_outcome, *outcomes]) == ["sent", "skipped"]
    assert provider.sent == [sms_id]
    # Handed over again later (a duplicate hand-over): nothing more is sent.
    late = FakeSms()
    assert delivery.attempt(engine, {"sms": late}, sms_id, False, lambda: NOW) == "skipped"
    assert late.sent == []
    row = _row(engine, sms_id)
    assert (row.status, row.attempts, row.provider_message_id) == ("sent", 1, f"provider-{sms_id}")


def test_a_provider_outage_is_recorded_then_retried_then_dead(engine):
    _, sms_id = _planned(engine)
    down = FakeSms(DeliveryFailed("provider answered 503"))
    with pytest.raises(delivery.RetryLater):
        delivery.attempt(engine, {"sms": down}, sms_id, False, lambda: NOW)
    assert _row(engine, sms_id).status == "retrying"
    with pytest.raises(delivery.RetryLater):
        delivery.attempt(engine, {"sms": down}, sms_id, True, lambda: NOW)
    row = _row(engine, sms_id)
    assert (row.status, row.attempts, row.last_error) == ("dead", 2, "provider answered 503")
    # The operator's replay of the dead letter: the message is tried again.
    assert delivery.attempt(engine, {"sms": FakeSms()}, sms_id, False, lambda: NOW) == "sent"
    assert _row(engine, sms_id).attempts == 3


def test_a_refusal_for_good_is_not_retried_and_an_administrator_may_resend_it(engine):
    _, sms_id = _planned(engine)
    refused = FakeSms(DeliveryFailed("provider answered 400", permanent=True))
    assert delivery.attempt(engine, {"sms": refused}, sms_id, False, lambda: NOW) == "failed"
    with engine.begin() as conn:
        shown = delivery_log.requeue(conn, sms_id, NOW)
    assert shown["status"] == "queued" and shown["destination"] == "+97150*****67"
    assert delivery.attempt(engine, {"sms": FakeSms()}, sms_id, False, lambda: NOW) == "sent"
    with engine.begin() as conn, pytest.raises(InvalidInput):
        delivery_log.requeue(conn, sms_id, NOW)  # it went: nothing to resend
    with engine.begin() as conn, pytest.raises(NotFound):
        delivery_log.requeue(conn, str(uuid.uuid4()), NOW)


def test_an_unconfigured_channel_waits_for_its_operator(engine):
    _, sms_id = _planned(engine)
    with pytest.raises(delivery.RetryLater, match="no sms channel"):
        delivery.attempt(engine, {}, sms_id, False, lambda: NOW)


def test_a_held_message_waits_for_the_sweeper_and_a_lost_hand_over_is_found(engine):
    _, sms_id = _planned(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE messages SET status = 'scheduled', not_before = :later"
                " WHERE message_id = :m"
            ),
            {"later": NOW + timedelta(hours=2), "m": sms_id},
        )
    assert delivery.attempt(engine, {"sms": FakeSms()}, sms_id, False, lambda: NOW) == "skipped"
    with engine.begin() as conn:
        assert sms_id not in delivery_log.release_due(conn, NOW)
        assert sms_id in delivery_log.release_due(conn, NOW + timedelta(hours=2))
    # Queued and never tried (its hand-over lost): found once it is stale.
    with engine.begin() as conn:
        assert sms_id not in delivery_log.stale_queued(conn, NOW, NOW)
        later = NOW + timedelta(hours=3)
        assert sms_id in delivery_log.stale_queued(conn, later, later)


def test_receipts_settle_what_the_provider_took(engine):
    _, sms_id = _planned(engine)
    delivery.attempt(engine, {"sms": FakeSms()}, sms_id, False, lambda: NOW)
    provider_id = _row(engine, sms_id).provider_message_id
    with engine.begin() as conn:
        assert delivery_log.record_receipt(conn, "sms", provider_id, None, True, NOW)
        assert not delivery_log.record_receipt(conn, "sms", "nobody-knows", None, True, NOW)
        assert not delivery_log.record_receipt(conn, "sms", "nobody-knows", sms_id, True, NOW)
    assert _row(engine, sms_id).status == "delivered"


def _a_receipt_waits_on_a_lock() -> bool:
    with ENGINES[0].connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE 'SELECT provider_message_id, status FROM messages%'"
                )
            ).scalar()
        )


def test_a_receipt_overtaking_the_worker_waits_for_what_it_was_answered(engine):
    _, sms_id = _planned(engine)
    receipt_done = []

    class ProviderThatCallsBackAtOnce(FakeSms):
        def send(self, message):
            result = super().send(message)

            # The provider's receipt, racing the worker's commit.
            def receipt():
                with engine.begin() as conn:
                    receipt_done.append(
                        delivery_log.record_receipt(
                            conn, "sms", result.provider_message_id, sms_id, False, NOW
                        )
                    )

            self.thread = threading.Thread(target=receipt)
            self.thread.start()
            # The worker answers only once the receipt waits on its row.
            wait_for(_a_receipt_waits_on_a_lock, timeout=10)
            return result

    provider = ProviderThatCallsBackAtOnce()
    assert delivery.attempt(engine, {"sms": provider}, sms_id, False, lambda: NOW) == "sent"
    provider.thread.join(10)
    assert receipt_done == [True]
    assert _row(engine, sms_id).status == "undelivered"


def test_the_feed_pages_newest_first_and_counts_what_is_unread(engine):
    citizen = str(uuid.uuid4())
    feed_ids = [_planned(engine, citizen)[0] for _ in range(5)]
    with engine.connect() as conn:
        first = delivery_log.feed(conn, citizen, 2, None, False)
        second = delivery_log.feed(conn, citizen, 2, first["next_cursor"], False)
        third = delivery_log.feed(conn, citizen, 2, second["next_cursor"], False)
    seen = [n["notification_id"] for page in (first, second, third) for n in page["notifications"]]
    assert sorted(seen) == sorted(feed_ids) and len(set(seen)) == 5
    assert third["next_cursor"] is None and first["unread_count"] == 5
    with engine.begin() as conn:
        assert delivery_log.mark_read(conn, citizen, [seen[0]], NOW) == 1
        assert delivery_log.mark_read(conn, str(uuid.uuid4()), None, NOW) == 0  # someone else
        assert delivery_log.unread_count(conn, citizen) == 4
        assert delivery_log.mark_read(conn, citizen, None, NOW) == 4
    with engine.connect() as conn, pytest.raises(InvalidInput):
        delivery_log.feed(conn, citizen, 2, "not-a-cursor", False)


def test_the_search_needs_a_key_and_names_every_problem(engine):
    _planned(engine)
    with engine.connect() as conn:
        with pytest.raises(InvalidInput) as refused:
            delivery_log.search(
                conn, {"status": "lost", "recipient_id": "x", "colour": 1}, 10, None
            )
        fields = {problem["field"] for problem in refused.value.problems}
        assert {"status", "recipient_id", "colour"} <= fields
        found = delivery_log.search(conn, {"destination": PHONE}, 100, None)["messages"]
    assert found and all(entry["destination"] == "+97150*****67" for entry in found)


def test_the_service_role_cannot_delete_the_log(engine):
    with pytest.raises(sa.exc.ProgrammingError), engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM messages"))
