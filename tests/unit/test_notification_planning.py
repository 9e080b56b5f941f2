"""What a citizen is told, on which channels and when: notices from events,
preferences and quiet hours, and the messages a notice becomes. Pure logic,
driven by the real file domain and catalogue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ksmart_catalogue.catalogue import Catalogue
from ksmart_common.domain.file import Actor, escalate, record_payment, take_action
from ksmart_common.errors import InvalidInput
from ksmart_notifications import notices, routing
from ksmart_notifications.preferences import Preferences, checked_changes
from tests.support.files import submission
from tests.unit.test_file_domain import Stream

KOCHI = "KL-EKM-KOC"
CITIZEN = Actor(str(uuid.uuid4()), ("citizen",))
CLERK = Actor("clerk-1", ("clerk",), KOCHI)
SECRETARY = Actor("secretary-1", ("secretary",), KOCHI)
CATALOGUE = Catalogue.load()
NAMES = notices.Names(
    service={"en": "Birth registration", "ml": "ജനന രജിസ്ട്രേഷൻ"},
    local_body={"en": "Kochi Corporation", "ml": "കൊച്ചി കോർപ്പറേഷൻ"},
)
PHONE = {"sms": "+971501234567"}
NOON_IN_KERALA = datetime(2026, 11, 30, 6, 30, tzinfo=UTC)


def _filed(code="birth-certificate"):
    stream = Stream(str(uuid.uuid4()))
    state = stream.add(
        submission(stream.stream_id[5:], CATALOGUE.get_service(code), KOCHI, CITIZEN), CITIZEN
    )
    return stream, state


def _notice(stream, state):
    return notices.notice_for(stream.envelopes[-1], state, NAMES)


# -- notices ------------------------------------------------------------------


def test_every_step_of_a_file_tells_the_citizen_what_happened_and_what_to_do():
    stream, state = _filed()
    received = _notice(stream, state)
    assert received.template == "application_received"
    assert received.recipient_id == CITIZEN.actor_id
    assert received.values["due_date"] == state.file_due_at

    state = stream.add(
        take_action(state, "return_for_clarification", CLERK, "Attach the discharge summary"), CLERK
    )
    asked = _notice(stream, state)
    assert asked.template == "clarification_requested"
    assert asked.values["remarks"] == "Attach the discharge summary"
    sla = CATALOGUE.get_service("birth-certificate")["workflow"]["states"][
        "clarification_requested"
    ]["sla_days"]
    assert asked.values["reply_by"] == stream.envelopes[-1].recorded_at + timedelta(days=sla)

    # The citizen's own answer tells them nothing they do not know.
    state = stream.add(take_action(state, "resubmit", CITIZEN, "Attached"), CITIZEN)
    assert _notice(stream, state) is None

    state = stream.add(take_action(state, "verify", CLERK), CLERK)
    moved = _notice(stream, state)
    assert moved.template == "file_progress"
    assert moved.values["state_label"]["ml"]

    state = stream.add(
        take_action(state, "reject", SECRETARY, "Not born in this body's area"), SECRETARY
    )
    refused = _notice(stream, state)
    assert refused.template == "application_refused"
    assert refused.values["remarks"] == "Not born in this body's area"


def test_a_fee_due_at_filing_is_asked_for_in_the_acknowledgement_and_its_payment_receipted():
    code = next(
        service["code"]
        for service in CATALOGUE.list_services()
        if any(not item.get("condition") for item in CATALOGUE.get_service(service["code"])["fees"])
    )
    stream, state = _filed(code)
    received = _notice(stream, state)
    assert received.template == "application_received_fee_due"
    assert received.values["amount"] == notices.Money(state.fee_due_paise)
    paid = record_payment(state, "pay-1", "fake", state.fee_due_paise)
    state = stream.add(paid, Actor("payment_provider", ("payment_provider",)))
    receipt = _notice(stream, state)
    assert receipt.template == "payment_received"
    assert notices.params(receipt, "en")["amount"].startswith("₹")


def test_an_escalation_names_who_has_the_file_now():
    stream, state = _filed()
    late = state.state_due_at + timedelta(days=1)
    state = stream.add(escalate(state, late), Actor("system", ("system",)))
    notice = _notice(stream, state)
    assert notice.template == "file_escalated"
    assert notices.params(notice, "en")["to_role"] != "secretary"  # a label, not a code


def test_assignments_and_documents_tell_the_citizen_nothing():
    stream, state = _filed()
    envelope = stream.envelopes[-1]
    assert notices.may_notify(envelope)
    for event_type, data in (
        ("FileAssigned", {"official_id": "x", "by_role": "clerk"}),
        ("DocumentAttached", {"code": "x", "document": {}}),
    ):
        other = envelope.__class__(**{**envelope.__dict__, "event_type": event_type, "data": data})
        assert not notices.may_notify(other)


def test_every_state_waiting_on_the_applicant_is_a_clarification_or_a_fee_demand():
    """The notices tell these two apart by the state's name."""
    for service in CATALOGUE.list_services():
        states = CATALOGUE.get_service(service["code"])["workflow"]["states"]
        for name, spec in states.items():
            if spec.get("waits_on") == "applicant":
                assert name in (notices.CLARIFICATION_STATE, notices.FEE_DEMAND_STATE), (
                    service["code"],
                    name,
                )


def test_params_are_texts_in_the_language_asked_for():
    stream, state = _filed()
    notice = _notice(stream, state)
    english, malayalam = notices.params(notice, "en"), notices.params(notice, "ml")
    assert english["service_name"] == "Birth registration"
    assert malayalam["service_name"] == "ജനന രജിസ്ട്രേഷൻ"
    assert english["due_date"] != malayalam["due_date"]


# -- preferences ------------------------------------------------------------------


def test_every_problem_with_the_preferences_is_named_at_once():
    with pytest.raises(InvalidInput) as refused:
        checked_changes(
            {
                "language": "fr",
                "channels": ["email", "pigeon"],
                "informational": "yes",
                "quiet_hours": {"start": "25:00", "end": "7"},
                "time_zone": "Mars/Olympus",
                "colour": "blue",
            },
            ("sms",),
        )
    fields = [problem["field"] for problem in refused.value.problems]
    for field in (
        "language",
        "channels",
        "informational",
        "quiet_hours.start",
        "quiet_hours.end",
        "time_zone",
        "colour",
    ):
        assert field in fields


def test_a_channel_without_a_contact_cannot_be_chosen():
    with pytest.raises(InvalidInput) as refused:
        checked_changes({"channels": ["email"]}, ("sms",))
    assert "sms" in refused.value.problems[0]["message"]


def test_quiet_hours_across_midnight_hold_a_message_until_they_end_in_the_citizens_zone():
    dubai = Preferences(quiet_start=time(22, 0), quiet_end=time(7, 0), time_zone="Asia/Dubai")
    # 23:30 in Dubai (19:30 UTC): held until 07:00 Dubai the next morning (03:00 UTC).
    late = datetime(2026, 11, 30, 19, 30, tzinfo=UTC)
    assert dubai.release_time(late) == datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    # 05:00 in Dubai: held until 07:00 the same morning.
    early = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert dubai.release_time(early) == datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    # Noon in Dubai: not quiet.
    assert dubai.release_time(datetime(2026, 12, 1, 8, 0, tzinfo=UTC)) is None
    # The same UTC moment is quiet in Kerala (01:00) though not in Dubai (23:30)... and vice versa.
    kerala = Preferences(quiet_start=time(22, 0), quiet_end=time(7, 0), time_zone="Asia/Kolkata")
    assert kerala.release_time(datetime(2026, 11, 30, 17, 0, tzinfo=UTC)) is not None  # 22:30 IST
    assert dubai.release_time(datetime(2026, 11, 30, 17, 0, tzinfo=UTC)) is None  # 21:00 Dubai


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1)),
    st.times(),
    st.times(),
)
def test_a_held_message_is_released_after_now_and_outside_the_quiet_hours(moment, start, end):
    start, end = start.replace(second=0, microsecond=0), end.replace(second=0, microsecond=0)
    preferences = Preferences(quiet_start=start, quiet_end=end, time_zone="Asia/Dubai")
    now = moment.replace(tzinfo=UTC)
    release = preferences.release_time(now)
    if release is not None:
        assert release > now
        assert release - now <= timedelta(hours=24)
        assert preferences.release_time(release) is None


def test_statutory_notices_always_reach_outside_the_app_and_informational_ones_may_be_turned_off():
    nothing = Preferences(channels=(), informational=False)
    assert nothing.channels_for(("sms",), statutory=True) == ("sms",)
    assert nothing.channels_for(("sms",), statutory=False) == ()
    assert Preferences().channels_for(("sms", "email"), statutory=False) == ("sms", "email")
    assert Preferences(channels=("email",)).channels_for(("sms", "email"), statutory=True) == (
        "email",
    )


# -- messages ------------------------------------------------------------------------


def test_a_notice_is_a_feed_entry_and_a_message_per_outside_channel_in_the_citizens_language():
    stream, state = _filed()
    notice = _notice(stream, state)
    planned = routing.messages_for(
        "event-1", notice, PHONE, Preferences(language="ml"), NOON_IN_KERALA
    )
    by_channel = {message.channel: message for message in planned}
    assert set(by_channel) == {"in_app", "sms"}
    assert by_channel["in_app"].status == "delivered" and by_channel["in_app"].destination is None
    assert by_channel["sms"].status == "queued" and by_channel["sms"].destination == PHONE["sms"]
    assert notice.file_id in by_channel["sms"].body and "ഫയൽ" in by_channel["sms"].body
    assert "ജനന രജിസ്ട്രേഷൻ" in by_channel["in_app"].body
    assert all(message.language == "ml" for message in planned)
    # Planned again (a duplicate event), the ids are the same: storing them is idempotent.
    again = routing.messages_for(
        "event-1", notice, PHONE, Preferences(language="ml"), NOON_IN_KERALA
    )
    assert [m.message_id for m in again] == [m.message_id for m in planned]


def test_quiet_hours_hold_outside_messages_but_not_the_feed():
    stream, state = _filed()
    notice = _notice(stream, state)
    quiet = Preferences(quiet_start=time(11, 0), quiet_end=time(13, 0), time_zone="Asia/Kolkata")
    planned = {
        m.channel: m for m in routing.messages_for("e", notice, PHONE, quiet, NOON_IN_KERALA)
    }
    assert planned["sms"].status == "scheduled"
    assert planned["sms"].not_before == datetime(2026, 11, 30, 7, 30, tzinfo=UTC)
    assert planned["in_app"].status == "delivered"


def test_a_code_is_logged_without_its_text():
    entry = routing.code_message("challenge-1", "sms", "+919876543210", "ml", NOON_IN_KERALA)
    assert entry.body is None and entry.subject is None
    assert entry.urgent and entry.status == "queued"
