"""Delivery channels: adapters that hand a rendered message to a provider.

A channel is configured by its environment variables alone (KSMART_SMS_URL,
KSMART_SMTP_HOST, ...); one left unset is simply absent, so a developer can
run without email and a deployment can choose its providers. A channel set
up wrongly stops the service at start-up, with every problem of every
channel in one message, rather than failing message by message later.
"""

from __future__ import annotations

from ksmart_notifications.channels.base import Channel, ConfigurationProblems
from ksmart_notifications.channels.email import SmtpSender, SmtpSettings
from ksmart_notifications.channels.sms import SmsSettings


def external_channels_from_environment() -> dict[str, Channel]:
    """The configured SMS and email channels by name ("sms", "email").

    ConfigurationProblems (a ValueError) names every problem at once."""
    channels: dict[str, Channel] = {}
    problems: list[str] = []
    try:
        sms_settings = SmsSettings.from_environment()
    except ConfigurationProblems as error:
        problems.extend(error.problems)
    else:
        if sms_settings is not None:
            channels["sms"] = sms_settings.provider()
    try:
        smtp_settings = SmtpSettings.from_environment()
    except ConfigurationProblems as error:
        problems.extend(error.problems)
    else:
        if smtp_settings is not None:
            channels["email"] = SmtpSender(smtp_settings)
    if problems:
        raise ConfigurationProblems(problems)
    return channels
