"""The messages table: the delivery log administrators search, the outbox the
delivery worker drains, and the citizen's in-app feed.

A message is inserted once per (source, channel); its status then only moves
forward as attempts are made and receipts arrive. Destinations are stored
whole (to send, and to be searched for) and shown masked.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ksmart_common.domain.contacts import mask
from ksmart_common.errors import InvalidInput, NotFound
from ksmart_common.identifiers import is_uuid
from ksmart_notifications.routing import NewMessage

# Statuses after which another attempt would send the message twice.
SETTLED = ("sent", "delivered", "undelivered", "failed")
# Statuses an administrator may send again from.
RESENDABLE = ("dead", "failed", "undelivered")
STATUSES = ("scheduled", "queued", "retrying", "sent", "delivered", "undelivered", "failed", "dead")
SEARCH_KEYS = ("destination", "file_number", "recipient_id", "status", "channel", "template")

_LOG_COLUMNS = (
    "message_id, source_id, channel, recipient_id, destination, template, language, urgent,"
    " statutory, file_id, file_number, status, not_before, attempts, last_error,"
    " provider_message_id, created_at, updated_at, sent_at, delivered_at"
)


def record(conn: sa.Connection, messages: Iterable[NewMessage]) -> None:
    """Store planned messages; one already there (a duplicate event) stays as it is."""
    rows = [
        {**asdict(message), "updated_at": message.created_at}
        | {"delivered_at": message.created_at if message.status == "delivered" else None}
        for message in messages
    ]
    if not rows:
        return
    conn.execute(
        sa.text(
            "INSERT INTO messages (message_id, source_id, channel, recipient_id, destination,"
            " template, language, urgent, statutory, file_id, file_number, subject, body,"
            " status, not_before, created_at, updated_at, delivered_at)"
            " VALUES (:message_id, :source_id, :channel, :recipient_id, :destination,"
            " :template, :language, :urgent, :statutory, :file_id, :file_number, :subject,"
            " :body, :status, :not_before, :created_at, :updated_at, :delivered_at)"
            " ON CONFLICT (source_id, channel) DO NOTHING"
        ),
        rows,
    )


def queued_of(conn: sa.Connection, source_id: str) -> list[str]:
    """A source's messages still to be handed to the delivery worker."""
    return list(
        conn.execute(
            sa.text(
                "SELECT message_id::text FROM messages"
                " WHERE source_id = :source_id AND status = 'queued'"
            ),
            {"source_id": source_id},
        ).scalars()
    )


def claim(conn: sa.Connection, message_id: str) -> sa.Row | None:
    """The message, locked for one attempt; None if unknown or another
    worker holds it (that worker will settle it)."""
    return conn.execute(
        sa.text(
            "SELECT message_id::text, source_id, channel, destination, subject, body, language,"
            " status, not_before, attempts FROM messages WHERE message_id = :message_id"
            " FOR UPDATE SKIP LOCKED"
        ),
        {"message_id": message_id},
    ).one_or_none()


def settle(
    conn: sa.Connection,
    message_id: str,
    status: str,
    now: datetime,
    error: str | None = None,
    provider_message_id: str | None = None,
) -> None:
    conn.execute(
        sa.text(
            "UPDATE messages SET status = :status, attempts = attempts + 1, updated_at = :now,"
            " last_error = :error,"
            " provider_message_id = coalesce(:provider_id, provider_message_id),"
            " sent_at = CASE WHEN :status = 'sent' THEN :now ELSE sent_at END"
            " WHERE message_id = :message_id"
        ),
        {
            "message_id": message_id,
            "status": status,
            "now": now,
            "error": error,
            "provider_id": provider_message_id,
        },
    )


def release_due(conn: sa.Connection, now: datetime, limit: int = 500) -> list[str]:
    """Messages held for quiet hours whose time has come, now queued."""
    return list(
        conn.execute(
            sa.text(
                "UPDATE messages SET status = 'queued', updated_at = :now"
                " WHERE message_id IN (SELECT message_id FROM messages"
                "   WHERE status = 'scheduled' AND not_before <= :now"
                "   ORDER BY not_before LIMIT :limit FOR UPDATE SKIP LOCKED)"
                " RETURNING message_id::text"
            ),
            {"now": now, "limit": limit},
        ).scalars()
    )


def stale_queued(
    conn: sa.Connection, before: datetime, now: datetime, limit: int = 500
) -> list[str]:
    """Queued messages nobody has tried since `before`: their hand-over to
    the worker may have been lost (a crash between commit and publish), so
    they are handed over again and their clock restarts."""
    return list(
        conn.execute(
            sa.text(
                "UPDATE messages SET updated_at = :now"
                " WHERE message_id IN (SELECT message_id FROM messages"
                "   WHERE status = 'queued' AND updated_at < :before"
                "   ORDER BY updated_at LIMIT :limit FOR UPDATE SKIP LOCKED)"
                " RETURNING message_id::text"
            ),
            {"before": before, "now": now, "limit": limit},
        ).scalars()
    )


def requeue(conn: sa.Connection, message_id: str, now: datetime) -> dict[str, Any]:
    """An administrator's resend of a message that did not arrive."""
    row = conn.execute(
        sa.text(
            f"UPDATE messages SET status = 'queued', updated_at = :now, not_before = NULL"
            f" WHERE message_id = :message_id AND status IN {RESENDABLE!r}"
            f" RETURNING {_LOG_COLUMNS}"
        ),
        {"message_id": message_id, "now": now},
    ).one_or_none()
    if row is not None:
        return _shown(row)
    current = conn.execute(
        sa.text(f"SELECT {_LOG_COLUMNS} FROM messages WHERE message_id = :message_id"),
        {"message_id": message_id},
    ).one_or_none()
    if current is None:
        raise NotFound(f"no message {message_id}")
    raise InvalidInput(
        "only a message that did not arrive can be sent again",
        [
            {
                "field": "status",
                "message": f"the message is {current.status}; resend works from "
                + ", ".join(RESENDABLE),
            }
        ],
    )


def record_receipt(
    conn: sa.Connection,
    channel: str,
    provider_message_id: str,
    reference: str | None,
    delivered: bool,
    now: datetime,
) -> bool:
    """The provider's word on a message it took; False if it names none of ours.

    A receipt can overtake the worker that sent the message: the provider
    answers, then calls back at once, before the worker has recorded what
    it was answered. The provider echoes our id as the reference, and the
    row is then locked by that id first: the lock waits for the worker's
    commit and reads the row as the worker left it. Looked up by the
    provider's id alone, the row could not be found before that commit."""
    if reference is not None and is_uuid(reference):
        row = conn.execute(
            sa.text(
                "SELECT provider_message_id, status FROM messages"
                " WHERE message_id = CAST(:reference AS uuid) AND channel = :channel FOR UPDATE"
            ),
            {"reference": reference, "channel": channel},
        ).one_or_none()
        if row is None or row.provider_message_id != provider_message_id:
            return False
    updated = conn.execute(
        sa.text(
            "UPDATE messages SET status = :status, updated_at = :now,"
            " delivered_at = CASE WHEN :delivered THEN :now ELSE delivered_at END,"
            " last_error = CASE WHEN :delivered THEN last_error"
            "   ELSE 'the provider could not deliver it' END"
            " WHERE channel = :channel AND provider_message_id = :provider_id"
            " AND status IN ('sent', 'delivered', 'undelivered')"
        ),
        {
            "status": "delivered" if delivered else "undelivered",
            "now": now,
            "delivered": delivered,
            "channel": channel,
            "provider_id": provider_message_id,
        },
    )
    return updated.rowcount > 0


# -- the citizen's feed -------------------------------------------------------


def feed(
    conn: sa.Connection, recipient_id: str, limit: int, cursor: str | None, unread_only: bool
) -> dict[str, Any]:
    after = _decode_cursor(cursor)
    rows = conn.execute(
        sa.text(
            "SELECT message_id::text, template, subject, body, file_id::text, file_number,"
            " created_at, read_at FROM messages"
            " WHERE recipient_id = :recipient AND channel = 'in_app'"
            " AND (NOT :unread_only OR read_at IS NULL)"
            " AND (CAST(:after_at AS timestamptz) IS NULL"
            "      OR (created_at, message_id) < (:after_at, CAST(:after_id AS uuid)))"
            " ORDER BY created_at DESC, message_id DESC LIMIT :limit"
        ),
        {
            "recipient": recipient_id,
            "unread_only": unread_only,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit + 1,
        },
    ).all()
    page = rows[:limit]
    return {
        "notifications": [
            {
                "notification_id": row.message_id,
                "template": row.template,
                "title": row.subject,
                "text": row.body,
                "file_id": row.file_id,
                "file_number": row.file_number,
                "created_at": row.created_at.isoformat(),
                "read_at": row.read_at.isoformat() if row.read_at else None,
            }
            for row in page
        ],
        "unread_count": unread_count(conn, recipient_id),
        "next_cursor": _encode_cursor(page[-1]) if len(rows) > limit else None,
    }


def unread_count(conn: sa.Connection, recipient_id: str) -> int:
    return conn.execute(
        sa.text(
            "SELECT count(*) FROM messages WHERE recipient_id = :recipient"
            " AND channel = 'in_app' AND read_at IS NULL"
        ),
        {"recipient": recipient_id},
    ).scalar_one()


def mark_read(
    conn: sa.Connection, recipient_id: str, notification_ids: list[str] | None, now: datetime
) -> int:
    """Mark some (or, given None, all) of the citizen's notifications read;
    anyone else's ids are ignored, as if unknown."""
    result = conn.execute(
        sa.text(
            "UPDATE messages SET read_at = :now, updated_at = :now"
            " WHERE recipient_id = :recipient AND channel = 'in_app' AND read_at IS NULL"
            " AND (CAST(:ids AS uuid[]) IS NULL OR message_id = ANY(CAST(:ids AS uuid[])))"
        ),
        {"now": now, "recipient": recipient_id, "ids": notification_ids},
    )
    return result.rowcount


# -- the administrators' search ----------------------------------------------


def search(
    conn: sa.Connection, filters: Mapping[str, Any], limit: int, cursor: str | None
) -> dict[str, Any]:
    unknown = sorted(set(filters) - set(SEARCH_KEYS))
    problems = [{"field": key, "message": "not a search key"} for key in unknown]
    status = filters.get("status")
    if status is not None and status not in STATUSES:
        problems.append({"field": "status", "message": f"one of {', '.join(STATUSES)}"})
    if not any(filters.get(key) for key in SEARCH_KEYS if key not in ("status", "channel")) and (
        status is None
    ):
        problems.append(
            {
                "field": "destination",
                "message": "give a destination, file number, person, template or status",
            }
        )
    for key in ("recipient_id",):
        if filters.get(key) is not None and not is_uuid(filters[key]):
            problems.append({"field": key, "message": "a user id (UUID)"})
    if problems:
        raise InvalidInput("the search cannot be run", problems)
    after = _decode_cursor(cursor)
    clauses = [f"{key} = :{key}" for key in SEARCH_KEYS if filters.get(key) is not None]
    clauses.append(
        "(CAST(:after_at AS timestamptz) IS NULL"
        " OR (created_at, message_id) < (:after_at, CAST(:after_id AS uuid)))"
    )
    rows = conn.execute(
        sa.text(
            f"SELECT {_LOG_COLUMNS} FROM messages WHERE {' AND '.join(clauses)}"
            " ORDER BY created_at DESC, message_id DESC LIMIT :limit"
        ),
        {
            **{key: filters.get(key) for key in SEARCH_KEYS},
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit + 1,
        },
    ).all()
    page = rows[:limit]
    return {
        "messages": [_shown(row) for row in page],
        "next_cursor": _encode_cursor(page[-1]) if len(rows) > limit else None,
    }


def _shown(row: sa.Row) -> dict[str, Any]:
    """A log entry as an administrator sees it: the destination masked."""
    moment = lambda value: value.isoformat() if value else None  # noqa: E731
    return {
        "message_id": str(row.message_id),
        "source_id": row.source_id,
        "channel": row.channel,
        "recipient_id": str(row.recipient_id) if row.recipient_id else None,
        "destination": mask(row.destination) if row.destination else None,
        "template": row.template,
        "language": row.language,
        "urgent": row.urgent,
        "statutory": row.statutory,
        "file_id": str(row.file_id) if row.file_id else None,
        "file_number": row.file_number,
        "status": row.status,
        "not_before": moment(row.not_before),
        "attempts": row.attempts,
        "last_error": row.last_error,
        "provider_message_id": row.provider_message_id,
        "created_at": moment(row.created_at),
        "updated_at": moment(row.updated_at),
        "sent_at": moment(row.sent_at),
        "delivered_at": moment(row.delivered_at),
    }


def _encode_cursor(row: sa.Row) -> str:
    raw = json.dumps([row.created_at.isoformat(), str(row.message_id)])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    try:
        at, message_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(uuid.UUID(message_id))
    except (ValueError, TypeError) as error:
        raise InvalidInput(
            "bad cursor", [{"field": "cursor", "message": "not a cursor from a previous page"}]
        ) from error
