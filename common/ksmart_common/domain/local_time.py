"""Kerala's time, in which the platform's dates are counted (a file
number's year, a certificate's dates): India Standard Time, UTC+05:30,
with no daylight saving, so a fixed offset is exact and needs no tz data."""

from datetime import timedelta, timezone

IST = timezone(timedelta(hours=5, minutes=30), "IST")
