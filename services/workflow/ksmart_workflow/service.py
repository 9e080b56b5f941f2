"""The workflow service: projects file states from events, answers queries
on them (inboxes, counts, projected files), and escalates overdue files.

Escalation runs on a timer in every replica: each finds the overdue files in
the projection and asks the applications service to escalate them, naming
the version it saw. The applications service decides again from the file's
own events and appends with that expected version, so when two replicas try
the same file, one escalation is stored and the other gets a conflict: it
fires once. The timer keeps no state of its own, so a restart loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from nameko.rpc import RpcProxy
from nameko.timer import timer

from ksmart_common import config
from ksmart_common.consumer import consume_events
from ksmart_common.database import Database
from ksmart_common.envelope import from_json
from ksmart_common.errors import ActionNotAllowed, InvalidInput, NotFound, VersionConflict
from ksmart_common.logging import get_logger
from ksmart_common.operations import Operations
from ksmart_common.rpc import call, rpc
from ksmart_workflow import projection
from ksmart_workflow.gauges import FileGauges

log = get_logger(__name__)

EVENTS_QUEUE = "workflow.events"
MAX_PAGE = 200
ESCALATION_INTERVAL_SECONDS = float(config.env("KSMART_ESCALATION_INTERVAL_SECONDS", "60"))


class WorkflowService:
    name = "workflow"

    # Health, readiness and metrics on the operations port; times every worker.
    ops = Operations()
    file_gauges = FileGauges()

    db = Database()
    applications = RpcProxy("applications")

    @consume_events(EVENTS_QUEUE)
    def on_event(self, body: dict) -> None:
        envelope = from_json(body)
        outcome = projection.apply_event(self.db, envelope, self._read_missing)
        log.info(
            "event projected",
            outcome=outcome,
            event_type=envelope.event_type,
            stream_id=envelope.stream_id,
            stream_version=envelope.stream_version,
            correlation_id=envelope.metadata.get("correlation_id"),
        )

    def _read_missing(self, stream_id: str, from_version: int, to_version: int):
        return [
            from_json(document)
            for document in call(self.applications.read_stream, stream_id, from_version, to_version)
        ]

    @timer(interval=ESCALATION_INTERVAL_SECONDS)
    def escalate_overdue(self) -> None:
        for file_id, version in projection.overdue_files(self.db, datetime.now(UTC)):
            try:
                call(self.applications.escalate, file_id, version)
            except (VersionConflict, ActionNotAllowed, NotFound) as refusal:
                # Another replica escalated it, or the file moved on.
                log.info("not escalated", file_id=file_id, reason=str(refusal))
            except Exception as error:  # noqa: BLE001 - one file must not stop the sweep
                log.warning("escalation failed", file_id=file_id, error=repr(error))
            else:
                log.info("escalated", file_id=file_id, version=version)

    @rpc
    def statistics(self, local_body: str | None = None, service_code: str | None = None) -> dict:
        return {"rows": projection.statistics(self.db, datetime.now(UTC), local_body, service_code)}

    @rpc
    def office_counts(self, actor: dict) -> dict:
        local_body = actor.get("local_body")
        if local_body is None:
            return {"local_body": None, "roles": []}
        return {
            "local_body": local_body,
            "roles": projection.office_counts(self.db, local_body, datetime.now(UTC)),
        }

    @rpc
    def inbox(
        self,
        actor: dict,
        limit: int = 50,
        cursor: str | None = None,
        filters: dict | None = None,
    ) -> dict:
        _check_limit(limit)
        with _cursor_checked():
            page = projection.inbox(
                self.db,
                tuple(actor.get("roles", ())),
                actor.get("local_body"),
                str(actor["actor_id"]),
                limit,
                cursor,
                projection.InboxFilter(**(filters or {})),
            )
        return {"files": page.files, "next_cursor": page.next_cursor}

    @rpc
    def applicant_files(self, actor: dict, limit: int = 50, cursor: str | None = None) -> dict:
        """The caller's own files (those they applied for), newest first:
        the actor's id decides whose, never an argument."""
        _check_limit(limit)
        with _cursor_checked():
            page = projection.applicant_files(self.db, str(actor["actor_id"]), limit, cursor)
        return {"files": page.files, "next_cursor": page.next_cursor}

    @rpc
    def track(self, file_number: str) -> dict:
        """Anyone's question: where does the file with this number stand?
        Nothing about a person (projection.public_progress); NotFound if no
        file has the number."""
        progress = projection.tracked_file(self.db, file_number, datetime.now(UTC))
        if progress is None:
            raise NotFound("no file has this number")
        return progress

    @rpc
    def file_by_number(self, file_number: str) -> dict:
        """The id of the file with this number, for an auditor (the gateway
        lets no one else ask); NotFound if no file has it."""
        file_id = projection.file_id_of_number(self.db, file_number)
        if file_id is None:
            raise NotFound("no file has this number")
        return {"file_id": file_id, "file_number": file_number}

    @rpc
    def projected_file(self, file_id: str) -> dict | None:
        state = projection.projected_file(self.db, file_id)
        return state.to_dict() if state else None

    @rpc
    def health(self) -> dict:
        with self.db.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok"}


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(
            "limit out of range", [{"field": "limit", "message": f"1 to {MAX_PAGE}"}]
        )


@contextmanager
def _cursor_checked() -> Iterator[None]:
    """A cursor that is not one we made is the caller's mistake (422), not ours."""
    try:
        yield
    except (ValueError, TypeError) as error:
        raise InvalidInput(
            "bad cursor", [{"field": "cursor", "message": "not a cursor from a previous page"}]
        ) from error
