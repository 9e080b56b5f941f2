"""A citizen's contact (an E.164 phone number or an email address) and how
it may be shown: the identity service registers citizens by it, and the
notifications service sends to it and shows it, masked, in its delivery log."""

from __future__ import annotations

SMS, EMAIL = "sms", "email"


def destinations_of(username: str) -> dict[str, str]:
    """Where a citizen signed up by this username is reached: a phone
    (E.164, +...) by SMS, an email address by email; nowhere outside the
    app for any other username (the demo citizens)."""
    if username.startswith("+"):
        return {SMS: username}
    if "@" in username:
        return {EMAIL: username}
    return {}


def mask(destination: str) -> str:
    """A destination as it may be shown: +97150*****67, a***@example.org."""
    if destination.startswith("+"):
        return destination[:6] + "*" * max(0, len(destination) - 8) + destination[-2:]
    local, _, domain = destination.partition("@")
    return f"{local[:1]}***@{domain}"
