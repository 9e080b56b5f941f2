"""A citizen's notification preferences: the language messages come in, the
outside channels wanted, informational messages on or off, and quiet hours
in the citizen's own time zone (many live abroad: a Gulf evening is not a
Kerala evening).

What the law requires the citizen to be told (an acknowledgement, a request
for clarification or a fee, a decision, a certificate) cannot be turned off:
such a notice goes to the chosen channels, and to the channel the citizen
signed up with when none is chosen. The in-app feed always has everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import sqlalchemy as sa

from ksmart_common.domain.vocabulary import LANGUAGES
from ksmart_common.errors import InvalidInput

EXTERNAL_CHANNELS = ("sms", "email")
IN_APP = "in_app"
DEFAULT_TIME_ZONE = "Asia/Kolkata"
HOUR_MINUTE = "%H:%M"
PREFERENCE_KEYS = ("language", "channels", "informational", "quiet_hours", "time_zone")


@dataclass(frozen=True)
class Preferences:
    language: str = "en"
    # None: every channel the citizen has a destination for.
    channels: tuple[str, ...] | None = None
    informational: bool = True
    quiet_start: time | None = None
    quiet_end: time | None = None
    time_zone: str = DEFAULT_TIME_ZONE

    def to_dict(self, available: tuple[str, ...]) -> dict[str, Any]:
        return {
            "language": self.language,
            "channels": list(self.wanted_channels(available)),
            "available_channels": list(available),
            "informational": self.informational,
            "quiet_hours": (
                {
                    "start": self.quiet_start.strftime(HOUR_MINUTE),
                    "end": self.quiet_end.strftime(HOUR_MINUTE),
                }
                if self.quiet_start is not None and self.quiet_end is not None
                else None
            ),
            "time_zone": self.time_zone,
        }

    def wanted_channels(self, available: tuple[str, ...]) -> tuple[str, ...]:
        if self.channels is None:
            return available
        return tuple(channel for channel in self.channels if channel in available)

    def channels_for(self, available: tuple[str, ...], statutory: bool) -> tuple[str, ...]:
        """The outside channels a message goes on, given the destinations
        the citizen has. Informational messages may be turned off; a
        statutory notice always goes somewhere outside the app."""
        wanted = self.wanted_channels(available)
        if statutory:
            return wanted or available[:1]
        return wanted if self.informational else ()

    def release_time(self, now: datetime) -> datetime | None:
        """When a non-urgent message may go out: None if now, else the end
        of the quiet hours the moment `now` falls in."""
        if self.quiet_start is None or self.quiet_end is None or self.quiet_start == self.quiet_end:
            return None
        zone = ZoneInfo(self.time_zone)
        local = now.astimezone(zone)
        start, end = self.quiet_start, self.quiet_end
        clock = local.timetz().replace(tzinfo=None)
        if start < end:
            quiet = start <= clock < end
            end_day = local.date()
        else:  # across midnight, e.g. 21:00 to 07:00
            quiet = clock >= start or clock < end
            end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
        if not quiet:
            return None
        # A wall-clock time in the zone; fold and gaps are zoneinfo's to settle.
        return datetime.combine(end_day, end, tzinfo=zone)


def checked_changes(changes: Mapping[str, Any], available: tuple[str, ...]) -> dict[str, Any]:
    """The changes a citizen asks for, as Preferences fields, or
    InvalidInput naming every problem at once."""
    problems: list[dict[str, str]] = []
    fields: dict[str, Any] = {}

    def problem(field: str, message: str) -> None:
        problems.append({"field": field, "message": message})

    for key in changes:
        if key not in PREFERENCE_KEYS:
            problem(key, "unknown preference")
    if "language" in changes:
        if changes["language"] in LANGUAGES:
            fields["language"] = changes["language"]
        else:
            problem("language", f"one of {', '.join(LANGUAGES)}")
    if "channels" in changes:
        channels = changes["channels"]
        if not isinstance(channels, list | tuple) or not all(
            isinstance(channel, str) for channel in channels
        ):
            problem("channels", "a list of channels")
        else:
            unknown = [channel for channel in channels if channel not in EXTERNAL_CHANNELS]
            missing = [c for c in channels if c in EXTERNAL_CHANNELS and c not in available]
            if unknown:
                problem("channels", f"unknown channel(s) {', '.join(unknown)}")
            if missing:
                problem(
                    "channels",
                    f"no {', '.join(missing)} contact on your account; "
                    f"you can be reached by {', '.join(available) or 'the app only'}",
                )
            if not unknown and not missing:
                fields["channels"] = tuple(dict.fromkeys(channels))
    if "informational" in changes:
        if isinstance(changes["informational"], bool):
            fields["informational"] = changes["informational"]
        else:
            problem("informational", "true or false")
    if "quiet_hours" in changes:
        quiet = changes["quiet_hours"]
        if quiet is None:
            fields["quiet_start"] = fields["quiet_end"] = None
        elif isinstance(quiet, Mapping) and set(quiet) == {"start", "end"}:
            parsed = {}
            for edge in ("start", "end"):
                try:
                    parsed[edge] = datetime.strptime(str(quiet[edge]), HOUR_MINUTE).time()
                except ValueError:
                    problem(f"quiet_hours.{edge}", "a time of day as HH:MM, e.g. 21:30")
            if len(parsed) == 2:
                if parsed["start"] == parsed["end"]:
                    problem("quiet_hours", "start and end must differ")
                else:
                    fields["quiet_start"], fields["quiet_end"] = parsed["start"], parsed["end"]
        else:
            problem("quiet_hours", 'null, or {"start": "HH:MM", "end": "HH:MM"}')
    if "time_zone" in changes:
        zone = changes["time_zone"]
        if isinstance(zone, str) and _known_zone(zone):
            fields["time_zone"] = zone
        else:
            problem("time_zone", "an IANA time zone name, e.g. Asia/Dubai")
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) with the preferences", problems)
    return fields


def _known_zone(name: str) -> bool:
    if name not in available_timezones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# -- storage ----------------------------------------------------------------


def load(conn: sa.Connection, user_id: str) -> Preferences:
    row = conn.execute(
        sa.text(
            "SELECT language, channels, informational, quiet_start, quiet_end, time_zone"
            " FROM preferences WHERE user_id = :user_id"
        ),
        {"user_id": user_id},
    ).one_or_none()
    if row is None:
        return Preferences()
    return Preferences(
        language=row.language,
        channels=tuple(row.channels),
        informational=row.informational,
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
        time_zone=row.time_zone,
    )


def update(
    engine: sa.Engine,
    user_id: str,
    changes: Mapping[str, Any],
    available: tuple[str, ...],
    now: datetime,
) -> Preferences:
    fields = checked_changes(changes, available)
    with engine.begin() as conn:
        # Serialise two updates of the same person: each starts from the other's result.
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext('preferences:' || :user_id))"),
            {"user_id": user_id},
        )
        current = load(conn, user_id)
        if current.channels is None:
            current = replace(current, channels=available)
        updated = replace(current, **fields)
        conn.execute(
            sa.text(
                "INSERT INTO preferences (user_id, language, channels, informational,"
                " quiet_start, quiet_end, time_zone, updated_at)"
                " VALUES (:user_id, :language, :channels, :informational,"
                " :quiet_start, :quiet_end, :time_zone, :now)"
                " ON CONFLICT (user_id) DO UPDATE SET language = EXCLUDED.language,"
                " channels = EXCLUDED.channels, informational = EXCLUDED.informational,"
                " quiet_start = EXCLUDED.quiet_start, quiet_end = EXCLUDED.quiet_end,"
                " time_zone = EXCLUDED.time_zone, updated_at = EXCLUDED.updated_at"
            ),
            {
                "user_id": user_id,
                "language": updated.language,
                "channels": list(updated.channels or ()),
                "informational": updated.informational,
                "quiet_start": updated.quiet_start,
                "quiet_end": updated.quiet_end,
                "time_zone": updated.time_zone,
                "now": now,
            },
        )
    return updated
