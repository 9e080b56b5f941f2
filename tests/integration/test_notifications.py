"""Notifications over the real platform: every service in its own process, a
real SMTP server (aiosmtpd) and the fake SMS provider (a real HTTP server)
in this process, as `make run`'s inbox.

A citizen signs in with a code read off the fake phone; their file's every
step reaches them in their language; a provider failing twice delivers
once; a duplicate event sends nothing more; a provider down for good ends
in the dead-letter queue, whence a resend delivers; and no code is stored
or logged anywhere.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from datetime import UTC, datetime

import pika
import pytest
import requests
import sqlalchemy as sa

from ksmart_common.envelope import CANONICAL_KEY
from ksmart_notifications.queues import DELIVERIES_QUEUE, EVENTS_QUEUE
from tests.support import actions, citizen, metrics
from tests.support.inbox import CODE, served_inbox
from tests.support.platform import running_platform
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def inbox_and_platform(tmp_path_factory):
    with served_inbox() as (inbox, inbox_environ):
        environ = {
            **inbox_environ,
            # One try per hand-over: the queue's retries (back-off, then the
            # dead-letter queue) are what these tests watch.
            "KSMART_SMS_ATTEMPTS": "1",
            "KSMART_NOTIFICATIONS_SWEEP_SECONDS": "0.5",
            "KSMART_CODE_BACKOFF_SECONDS": "0.2",
            # Every test signs citizens in from this one address.
            "KSMART_OTP_PER_CLIENT": "1000",
        }
        with running_platform(
            tmp_path_factory.mktemp("notifications"), environ=environ
        ) as platform:
            yield inbox, platform


@pytest.fixture
def inbox(inbox_and_platform):
    return inbox_and_platform[0]


@pytest.fixture
def platform(inbox_and_platform):
    return inbox_and_platform[1]


def _url(platform, path: str) -> str:
    return f"{platform.base_url}/api/v1{path}"


def _phone() -> str:
    return "+9715" + "".join(secrets.choice("0123456789") for _ in range(8))


def _sign_in(platform, inbox, phone=None, email=None, language="en") -> str:
    """Sign a citizen in with the code the platform sends them; the token is
    kept for `platform.as_user(phone or email)`."""
    destination = phone or email
    before = len(_received(inbox, destination))
    reply = requests.post(
        _url(platform, "/auth/otp"),
        json={"phone": phone, "email": email, "language": language},
        timeout=10,
    )
    assert reply.status_code == 202, reply.text
    texts = wait_for(
        lambda: _received(inbox, destination)[before:], timeout=30, message="the code to arrive"
    )
    code = CODE.search(texts[-1]).group(1)
    reply = requests.post(
        _url(platform, "/auth/otp/verify"),
        json={"challenge_id": reply.json()["challenge_id"], "code": code},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    platform.tokens[destination] = reply.json()["access_token"]
    return code


def _received(inbox, destination: str) -> list[str]:
    if destination.startswith("+"):
        return [message["text"] for message in inbox.sms.messages(destination)]
    return [f"{mail['subject']}\n{mail['text']}" for mail in inbox.mailbox.mails(destination)]


def _submit(platform, user) -> dict:
    reply = citizen.submit(platform, citizen.application(platform, user=user), user=user)
    assert reply.status_code == 201, reply.text
    return reply.json()


def _log(platform, **where) -> list[sa.Row]:
    clauses = " AND ".join(f"{key} = :{key}" for key in where)
    with platform.engine("notifications").connect() as conn:
        return conn.execute(
            sa.text(f"SELECT * FROM messages WHERE {clauses} ORDER BY created_at"), where
        ).all()


def _set_language(platform, user, language):
    reply = requests.patch(
        _url(platform, "/notification-preferences"),
        json={"language": language},
        headers=platform.as_user(user),
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


# -- one-time codes -----------------------------------------------------------------


def test_a_code_signs_a_citizen_in_and_is_never_stored_or_logged(platform, inbox):
    phone = _phone()
    code = _sign_in(platform, inbox, phone=phone, language="ml")
    text = _received(inbox, phone)[-1]
    assert "കെ-സ്മാർട്ട്" in text  # asked for in Malayalam

    entries = wait_for(
        lambda: [row for row in _log(platform, destination=phone) if row.status != "queued"]
    )
    assert [(row.template, row.channel) for row in entries] == [("one_time_code", "sms")]
    assert entries[0].body is None and entries[0].subject is None

    # Nowhere in the notifications database, nor in any process's log, as a
    # number of its own (a timestamp's microseconds are not a code).
    standalone = re.compile(rf"(?<![\d.:]){code}(?!\d)")
    with platform.engine("notifications").connect() as conn:
        for table in ("messages", "preferences"):
            rows = conn.execute(sa.text(f"SELECT to_jsonb(t)::text FROM {table} t")).scalars()
            assert not any(standalone.search(row) for row in rows), table
    for log_file in platform.run_dir.glob("*.log"):
        assert not standalone.search(log_file.read_text(errors="replace")), log_file.name


def test_a_code_outlives_a_short_outage_and_is_given_up_when_the_provider_stays_down(
    platform, inbox
):
    phone = _phone()
    inbox.sms.fail_next(2)
    _sign_in(platform, inbox, phone=phone)  # the third try reaches the phone
    [entry] = _log(platform, destination=phone)
    assert entry.attempts == 3 and entry.status in ("sent", "delivered")

    other = _phone()
    inbox.sms.fail_always()
    try:
        reply = requests.post(_url(platform, "/auth/otp"), json={"phone": other}, timeout=10)
        assert reply.status_code == 202
        failed = wait_for(
            lambda: [r for r in _log(platform, destination=other) if r.status == "failed"],
            message="the code to be given up",
        )[0]
    finally:
        inbox.sms.recover()
    assert failed.attempts == 4 and failed.body is None
    assert not _received(inbox, other)


def test_an_email_citizen_gets_the_code_and_every_step_by_email(platform, inbox):
    address = f"citizen-{uuid.uuid4().hex[:8]}@example.org"
    _sign_in(platform, inbox, email=address)
    file = _submit(platform, address)
    actions.take(platform, "clerk.kochi", file["file_id"], "verify")
    actions.take(platform, "secretary.kochi", file["file_id"], "approve")

    def subjects():
        mails = inbox.mailbox.mails(address)
        return [mail["subject"] for mail in mails] if len(mails) >= 5 else None

    wait_for(subjects, timeout=30, message="the mails of the file")
    mails = inbox.mailbox.mails(address)
    file_mails = [mail for mail in mails if file["file_number"] in mail["text"]]
    # Acknowledgement, progress, approval, certificate: each once.
    assert len(file_mails) == 4, [mail["subject"] for mail in mails]
    assert all(mail["message_id"].endswith("@ksmart.invalid>") for mail in file_mails)
    assert any("certificate" in mail["text"].lower() for mail in file_mails)


def test_identity_is_asked_for_a_citizens_contact_once(platform, inbox):
    phone = _phone()
    _sign_in(platform, inbox, phone=phone)
    asked_before = _contact_calls(platform)
    first, second = _submit(platform, phone), _submit(platform, phone)

    def acknowledged():
        texts = _received(inbox, phone)
        return all(any(f["file_number"] in text for text in texts) for f in (first, second))

    wait_for(acknowledged, timeout=30, message="both acknowledgements")
    # The first notice learned the contact; the second read it here.
    assert _contact_calls(platform) - asked_before == 1
    with platform.engine("notifications").connect() as conn:
        kept = conn.execute(
            sa.text("SELECT destinations FROM contacts WHERE user_id = :user_id"),
            {"user_id": first["applicant_id"]},
        ).scalar()
    assert kept == {"sms": phone}


def _contact_calls(platform) -> float:
    """How often identity has answered `contact`, from its metrics."""
    reply = requests.get(f"{platform.ops_url('identity')}/metrics", timeout=10)
    assert reply.status_code == 200
    return metrics.value(metrics.parse(reply.text), "ksmart_worker_seconds_count", method="contact")


# -- a file's life, in the citizen's language ------------------------------------------


def test_a_file_lifecycle_tells_the_citizen_every_step_in_malayalam(platform, inbox):
    phone = _phone()
    _sign_in(platform, inbox, phone=phone)
    assert _set_language(platform, phone, "ml")["language"] == "ml"
    file = _submit(platform, phone)
    number = file["file_number"]
    actions.take(
        platform,
        "clerk.kochi",
        file["file_id"],
        "return_for_clarification",
        remarks="Attach the discharge summary",
    )
    wait_for(lambda: len([t for t in _received(inbox, phone) if number in t]) >= 2)
    actions.take(platform, phone, file["file_id"], "resubmit", remarks="Attached")
    actions.take(platform, "clerk.kochi", file["file_id"], "verify")
    actions.take(platform, "secretary.kochi", file["file_id"], "approve")

    expected = [
        "application_received",
        "clarification_requested",
        "file_progress",
        "application_approved",
        "certificate_ready",
    ]

    def sent():
        rows = [row for row in _log(platform, file_id=file["file_id"], channel="sms")]
        return (
            rows
            if len(rows) == len(expected) and all(r.status in ("sent", "delivered") for r in rows)
            else None
        )

    rows = wait_for(sent, timeout=30, message="every step's SMS")
    # The approval and its certificate are one append: handled side by side,
    # either may be told first.
    assert sorted(row.template for row in rows) == sorted(expected)
    texts = [t for t in _received(inbox, phone) if number in t]
    assert len(texts) == len(expected)
    assert all(re.search("[\u0d00-\u0d7f]", text) for text in texts)
    # The provider's receipts arrive at the gateway, signed, and are recorded.
    wait_for(
        lambda: all(
            row.status == "delivered"
            for row in _log(platform, file_id=file["file_id"], channel="sms")
        ),
        message="delivery receipts",
    )

    # The same steps are in the feed, newest first, unread until read.
    feed = requests.get(
        _url(platform, "/notifications"), headers=platform.as_user(phone), timeout=10
    )
    assert feed.status_code == 200, feed.text
    entries = [n for n in feed.json()["notifications"] if n["file_id"] == file["file_id"]]
    assert sorted(n["template"] for n in entries) == sorted(expected)
    [asked] = [n for n in entries if n["template"] == "clarification_requested"]
    assert "Attach the discharge summary" in asked["text"]  # what was asked, verbatim
    assert feed.json()["unread_count"] >= len(expected)
    first = entries[-1]["notification_id"]
    marked = requests.post(
        _url(platform, "/notifications/read"),
        json={"notification_ids": [first]},
        headers=platform.as_user(phone),
        timeout=10,
    )
    assert marked.json() == {"marked": 1, "unread_count": feed.json()["unread_count"] - 1}
    everything = requests.post(
        _url(platform, "/notifications/read"), json={}, headers=platform.as_user(phone), timeout=10
    )
    assert everything.json()["unread_count"] == 0
    unread = requests.get(
        _url(platform, "/notifications"),
        params={"unread": "true"},
        headers=platform.as_user(phone),
        timeout=10,
    )
    assert unread.json()["notifications"] == []


def test_a_citizen_reads_only_their_own_feed(platform, inbox):
    phone, other = _phone(), _phone()
    _sign_in(platform, inbox, phone=phone)
    _sign_in(platform, inbox, phone=other)
    _submit(platform, phone)
    wait_for(lambda: _log(platform, channel="in_app", recipient_id=_user_id(platform, phone)))
    theirs = requests.get(
        _url(platform, "/notifications"), headers=platform.as_user(other), timeout=10
    )
    assert theirs.json()["notifications"] == [] and theirs.json()["unread_count"] == 0
    mine = requests.get(
        _url(platform, "/notifications"), headers=platform.as_user(phone), timeout=10
    ).json()
    stolen = requests.post(
        _url(platform, "/notifications/read"),
        json={"notification_ids": [mine["notifications"][0]["notification_id"]]},
        headers=platform.as_user(other),
        timeout=10,
    )
    assert stolen.json()["marked"] == 0
    officials = requests.get(
        _url(platform, "/notifications"), headers=platform.as_user("clerk.kochi"), timeout=10
    )
    assert officials.status_code == 403


def _user_id(platform, username) -> str:
    with platform.engine("identity").connect() as conn:
        return str(
            conn.execute(
                sa.text("SELECT user_id FROM users WHERE username = :u"), {"u": username}
            ).scalar_one()
        )


# -- faults ------------------------------------------------------------------------------


def test_a_provider_failing_twice_then_succeeding_delivers_once(platform, inbox):
    phone = _phone()
    _sign_in(platform, inbox, phone=phone)
    failures_before = inbox.sms.failures_answered
    inbox.sms.fail_next(2)
    file = _submit(platform, phone)
    wait_for(
        lambda: [t for t in _received(inbox, phone) if file["file_number"] in t], message="the SMS"
    )
    row = wait_for(
        lambda: [
            r
            for r in _log(platform, file_id=file["file_id"], channel="sms")
            if r.status in ("sent", "delivered")
        ]
    )[0]
    assert row.attempts == 3
    assert inbox.sms.failures_answered - failures_before == 2
    assert len([t for t in _received(inbox, phone) if file["file_number"] in t]) == 1


def test_a_duplicate_event_sends_nothing_more(platform, inbox):
    phone = _phone()
    _sign_in(platform, inbox, phone=phone)
    file = _submit(platform, phone)
    wait_for(
        lambda: [
            r
            for r in _log(platform, file_id=file["file_id"], channel="sms")
            if r.status in ("sent", "delivered")
        ]
    )
    with platform.engine("applications").connect() as conn:
        stored = conn.execute(
            sa.text("SELECT event_id FROM events WHERE stream_id = :s AND stream_version = 1"),
            {"s": f"file-{file['file_id']}"},
        ).scalar_one()
    audit = requests.get(
        _url(platform, f"/audit/files/{file['file_id']}/events"),
        headers=platform.as_user("auditor"),
        timeout=10,
    )
    assert audit.status_code == 200, audit.text
    # The envelope as the relay publishes it: the export's stored text aside.
    envelope = {k: v for k, v in audit.json()["events"][0].items() if k != CANONICAL_KEY}
    assert envelope["event_id"] == str(stored)
    log_file = platform.run_dir / "notifications.log"
    planned = lambda: log_file.read_text().count(f'"stream_id": "file-{file["file_id"]}"')  # noqa: E731
    before = planned()
    for _ in range(2):  # the relay's at-least-once, twice over
        _publish(platform.amqp_uri, EVENTS_QUEUE, envelope)
    wait_for(lambda: planned() >= before + 2, message="the duplicates to be handled")
    assert len([t for t in _received(inbox, phone) if file["file_number"] in t]) == 1
    assert len(_log(platform, file_id=file["file_id"])) == 2  # one SMS, one feed entry


def test_a_provider_down_for_good_ends_in_the_dead_letter_queue_and_a_resend_delivers(
    platform, inbox
):
    phone = _phone()
    _sign_in(platform, inbox, phone=phone)
    inbox.sms.fail_always()
    try:
        file = _submit(platform, phone)
        dead = wait_for(
            lambda: [
                r
                for r in _log(platform, file_id=file["file_id"], channel="sms")
                if r.status == "dead"
            ],
            message="the message to be dead-lettered",
        )[0]
        assert dead.attempts == 3  # the first try and one per retry delay
        assert "503" in dead.last_error
        wait_for(lambda: _queue_depth(platform.amqp_uri, f"{DELIVERIES_QUEUE}.dead") >= 1)
    finally:
        inbox.sms.recover()
    assert not [t for t in _received(inbox, phone) if file["file_number"] in t]

    # The operator's replay of the dead-letter queue delivers it, once.
    from ksmart_ops import admin

    monkey_env = {"KSMART_AMQP_URI": platform.amqp_uri}
    with _environment(monkey_env):
        assert admin.replay_dead_letters(DELIVERIES_QUEUE) >= 1
    wait_for(
        lambda: [t for t in _received(inbox, phone) if file["file_number"] in t],
        message="the resent SMS",
    )
    row = wait_for(
        lambda: [
            r
            for r in _log(platform, message_id=dead.message_id)
            if r.status in ("sent", "delivered")
        ]
    )[0]
    assert row.attempts == 4
    assert len([t for t in _received(inbox, phone) if file["file_number"] in t]) == 1


def test_an_administrator_finds_a_failed_message_by_phone_and_sends_it_again(platform, inbox):
    phone = _phone()
    _sign_in(platform, inbox, phone=phone)
    inbox.sms.fail_next(1, status=400)  # refused for good: not retried
    file = _submit(platform, phone)
    wait_for(
        lambda: [
            r
            for r in _log(platform, file_id=file["file_id"], channel="sms")
            if r.status == "failed"
        ]
    )

    search = requests.get(
        _url(platform, "/admin/notifications"),
        params={"destination": phone, "status": "failed"},
        headers=platform.as_user("admin"),
        timeout=10,
    )
    assert search.status_code == 200, search.text
    [entry] = search.json()["messages"]
    assert entry["destination"] != phone and entry["destination"].endswith(phone[-2:])
    assert entry["file_number"] == file["file_number"] and entry["attempts"] == 1

    citizens_try = requests.post(
        _url(platform, f"/admin/notifications/{entry['message_id']}/resend"),
        headers=platform.as_user(phone),
        timeout=10,
    )
    assert citizens_try.status_code == 403
    resent = requests.post(
        _url(platform, f"/admin/notifications/{entry['message_id']}/resend"),
        headers=platform.as_user("admin"),
        timeout=10,
    )
    assert resent.status_code == 200, resent.text
    wait_for(
        lambda: [t for t in _received(inbox, phone) if file["file_number"] in t],
        message="the resent SMS",
    )
    again = requests.post(
        _url(platform, f"/admin/notifications/{entry['message_id']}/resend"),
        headers=platform.as_user("admin"),
        timeout=10,
    )
    assert again.status_code == 422  # it arrived: nothing to resend
    assert again.headers["Content-Type"].startswith("application/problem+json")


def test_quiet_hours_hold_a_message_until_they_end(platform, inbox):
    phone = _phone()
    _sign_in(platform, inbox, phone=phone)
    now = datetime.now(UTC)
    start = f"{(now.hour + 23) % 24:02d}:00"  # quiet from an hour ago ...
    end = f"{(now.hour + 2) % 24:02d}:00"  # ... for a while yet (UTC)
    reply = requests.patch(
        _url(platform, "/notification-preferences"),
        json={"quiet_hours": {"start": start, "end": end}, "time_zone": "UTC"},
        headers=platform.as_user(phone),
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    file = _submit(platform, phone)
    held = wait_for(lambda: _log(platform, file_id=file["file_id"], channel="sms"))[0]
    assert held.status == "scheduled" and held.not_before > now
    # The feed has it at once.
    assert _log(platform, file_id=file["file_id"], channel="in_app")[0].status == "delivered"
    # The quiet hours end (the clock is moved, not waited for): the sweeper sends it.
    with platform.engine("notifications").begin() as conn:
        conn.execute(
            sa.text("UPDATE messages SET not_before = now() WHERE message_id = :m"),
            {"m": held.message_id},
        )
    wait_for(
        lambda: [t for t in _received(inbox, phone) if file["file_number"] in t],
        message="the released SMS",
    )


def test_preferences_refuse_every_problem_at_once(platform, inbox):
    phone = _phone()
    _sign_in(platform, inbox, phone=phone)
    reply = requests.patch(
        _url(platform, "/notification-preferences"),
        json={
            "language": "fr",
            "channels": ["email"],
            "quiet_hours": {"start": "9", "end": "07:00"},
            "time_zone": "Nowhere/Land",
        },
        headers=platform.as_user(phone),
        timeout=10,
    )
    assert reply.status_code == 422
    fields = {problem["field"] for problem in reply.json()["problems"]}
    assert {"language", "channels", "quiet_hours.start", "time_zone"} <= fields, reply.json()
    current = requests.get(
        _url(platform, "/notification-preferences"), headers=platform.as_user(phone), timeout=10
    )
    assert current.json()["available_channels"] == ["sms"] and current.json()["language"] == "en"


# -- helpers -------------------------------------------------------------------------------


def _publish(amqp_uri: str, queue: str, document: dict) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            "",
            queue,
            json.dumps(document).encode(),
            pika.BasicProperties(content_type="application/json", delivery_mode=2),
            mandatory=True,
        )
    finally:
        connection.close()


def _queue_depth(amqp_uri: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


class _environment:
    """Set environment variables for the operator's command run in-process."""

    def __init__(self, values):
        self.values = values

    def __enter__(self):
        import os

        self.saved = {key: os.environ.get(key) for key in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc):
        import os

        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
