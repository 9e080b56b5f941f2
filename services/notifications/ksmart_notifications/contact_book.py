"""Where each citizen is reached, as learned from the identity service.

identity owns contacts: a citizen's is the phone or email they signed up
with, which nothing can change. So the first notice for a citizen asks
identity (`contact`), and the answer is kept here: every later notice for
them is one indexed read instead of a call through RabbitMQ and identity's
database. If identity ever lets a contact change, it must say so in an
event this service consumes to drop the row, or notices would go to the
old contact.
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa


def known(conn: sa.Connection, user_id: str) -> dict[str, str] | None:
    """The citizen's destinations by channel; None if not yet learned."""
    return conn.execute(
        sa.text("SELECT destinations FROM contacts WHERE user_id = :user_id"),
        {"user_id": user_id},
    ).scalar()


def remember(
    conn: sa.Connection, user_id: str, destinations: dict[str, str], now: datetime
) -> None:
    """Keep what identity answered (an empty answer too: a citizen without
    a phone or email is reached in the app only)."""
    conn.execute(
        sa.text(
            "INSERT INTO contacts (user_id, destinations, learned_at)"
            " VALUES (:user_id, CAST(:destinations AS jsonb), :now)"
            " ON CONFLICT (user_id) DO UPDATE SET destinations = EXCLUDED.destinations,"
            " learned_at = EXCLUDED.learned_at"
        ),
        {"user_id": user_id, "destinations": json.dumps(destinations), "now": now},
    )
