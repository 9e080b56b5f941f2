"""What every delivery channel (SMS, email) takes, returns and raises.

A channel is an adapter: it hands one rendered message to one provider and
says how that went. It decides nothing about whom to notify or when to try
again later; it only tells the caller whether trying again could help
(`DeliveryFailed.permanent`).

A message's text may hold a one-time sign-in code. Whoever holds the text
could sign in as the citizen, so it never leaves a channel except towards
the provider: it is kept out of the message's repr (a stray `log(message=m)`
must not print it), out of every `DeliveryFailed` reason and out of the logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ksmart_common.config import env


@dataclass(frozen=True)
class OutgoingMessage:
    """One rendered message for one destination on one channel."""

    # A UUID, unique per (event, channel). Providers get it as their
    # idempotency reference, so delivering the same message twice (after a
    # crash between sending and recording) reaches the citizen once.
    message_id: str
    destination: str  # E.164 ("+971501234567") for sms, an email address for email
    subject: str | None  # email only
    text: str = field(repr=False)  # may contain a one-time code: never log it
    language: str  # "en" or "ml"


@dataclass(frozen=True)
class SendResult:
    """The provider accepted the message; this is its name for it."""

    provider_message_id: str


class DeliveryFailed(Exception):
    """The provider did not accept the message.

    `permanent` means sending the same message again cannot succeed (the
    number or mailbox does not exist, the provider refuses the request as
    malformed); otherwise a later attempt may. `reason` says what happened
    for the delivery log and never contains the message's text.
    """

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason, permanent)

    @property
    def reason(self) -> str:
        return self.args[0]

    @property
    def permanent(self) -> bool:
        return self.args[1]

    def __str__(self) -> str:
        kind = "permanent" if self.permanent else "transient"
        return f"{self.reason} ({kind})"


class ConfigurationProblems(ValueError):
    """Settings that cannot work, all of them at once: fixing one problem
    per restart is slow, and an operator wants the whole list."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class Channel(Protocol):
    name: str  # "sms" or "email"

    def send(self, message: OutgoingMessage) -> SendResult:
        """Hand the message to the provider; DeliveryFailed if it was not accepted."""
        ...


# Reading settings: each helper notes a problem in `problems` and returns a
# stand-in, so one pass over the environment finds every problem.


def positive_seconds(name: str, default: str, problems: list[str]) -> float:
    """A duration setting in seconds (> 0, finite)."""
    raw = env(name, default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        problems.append(f"{name} must be a positive number of seconds (it is {raw!r})")
        return float(default)
    return value


def whole_number(name: str, default: str, low: int, high: int, problems: list[str]) -> int:
    """An integer setting within [low, high]."""
    raw = env(name, default)
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        problems.append(f"{name} must be a whole number from {low} to {high} (it is {raw!r})")
        return int(default)
    return value
