"""Which messages a notice becomes: one per channel the citizen is to be told
on, rendered in their language, held for their quiet hours unless urgent.

Message ids are derived from (source, channel), so planning the same event
twice plans the same messages: storing them is idempotent, and the id a
provider sees as its idempotency reference never changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ksmart_common.domain.vocabulary import DEFAULT_LANGUAGE, LANGUAGES
from ksmart_notifications import rendering
from ksmart_notifications.notices import Notice, params
from ksmart_notifications.preferences import EXTERNAL_CHANNELS, IN_APP, Preferences

MESSAGE_NAMESPACE = uuid.UUID("8f5d2a52-8d0e-4c38-9a53-4f1f7d0c2b61")
ONE_TIME_CODE = "one_time_code"
# A citizen's consent code for an application counter staff file in their
# name: says who asks (the counter's office) and to give it only if asked.
COUNTER_CONSENT_CODE = "counter_consent_code"
# The template of a code, by the purpose identity's OtpRequested gives it.
CODE_TEMPLATES = {"sign_in": ONE_TIME_CODE, "counter_consent": COUNTER_CONSENT_CODE}
SCHEDULED, QUEUED, DELIVERED = "scheduled", "queued", "delivered"


def message_id(source_id: str, channel: str) -> str:
    return str(uuid.uuid5(MESSAGE_NAMESPACE, f"{source_id}/{channel}"))


@dataclass(frozen=True)
class NewMessage:
    message_id: str
    source_id: str
    channel: str
    recipient_id: str | None
    destination: str | None
    template: str
    language: str
    urgent: bool
    statutory: bool
    file_id: str | None
    file_number: str | None
    subject: str | None
    body: str | None
    status: str
    not_before: datetime | None
    created_at: datetime


def messages_for(
    source_id: str,
    notice: Notice,
    destinations: Mapping[str, str],
    preferences: Preferences,
    now: datetime,
) -> list[NewMessage]:
    template = rendering.template(notice.template)
    language = preferences.language
    rendered = rendering.render(notice.template, language, params(notice, language))
    available = tuple(channel for channel in EXTERNAL_CHANNELS if channel in destinations)
    release = None if template.urgent else preferences.release_time(now)

    def message(channel: str, destination: str | None, subject, body, status, not_before):
        return NewMessage(
            message_id=message_id(source_id, channel),
            source_id=source_id,
            channel=channel,
            recipient_id=notice.recipient_id,
            destination=destination,
            template=notice.template,
            language=language,
            urgent=template.urgent,
            statutory=template.statutory,
            file_id=notice.file_id,
            file_number=notice.file_number,
            subject=subject,
            body=body,
            status=status,
            not_before=not_before,
            created_at=now,
        )

    planned = []
    if template.in_app:
        planned.append(message(IN_APP, None, rendered.subject, rendered.text, DELIVERED, None))
    for channel in preferences.channels_for(available, template.statutory):
        subject = rendered.subject if channel == "email" else None
        body = rendered.text if channel == "email" else rendered.sms
        status = SCHEDULED if release is not None else QUEUED
        planned.append(message(channel, destinations[channel], subject, body, status, release))
    return planned


def code_message(
    challenge_id: str,
    channel: str,
    destination: str,
    language: str,
    now: datetime,
    template_name: str = ONE_TIME_CODE,
) -> NewMessage:
    """The log's entry for a one-time code: where it went, never what it said."""
    template = rendering.template(template_name)
    return NewMessage(
        message_id=message_id(challenge_id, channel),
        source_id=challenge_id,
        channel=channel,
        recipient_id=None,
        destination=destination,
        template=template_name,
        language=language if language in LANGUAGES else DEFAULT_LANGUAGE,
        urgent=template.urgent,
        statutory=template.statutory,
        file_id=None,
        file_number=None,
        subject=None,
        body=None,
        status=QUEUED,
        not_before=None,
        created_at=now,
    )
