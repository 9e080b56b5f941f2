"""Escalation decided by several timers at once (replicas of the workflow
service) is stored once: each names the version it saw, and the store
refuses all but the first."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

from ksmart_applications import commands
from ksmart_applications.command_types import EscalateFile
from ksmart_catalogue.catalogue import Catalogue
from ksmart_common.domain.file import Actor
from ksmart_common.envelope import file_stream_id
from tests.support.files import submission

METADATA = {"actor_id": "citizen-1", "actor_roles": ["citizen"], "correlation_id": "c"}


def test_eight_timers_escalating_one_overdue_file_store_one_escalation(store):
    definition = Catalogue.load().get_service("birth-certificate")
    file_id = str(uuid.uuid4())
    events = submission(file_id, definition, "KL-EKM-KOC", Actor("citizen-1", ("citizen",)))
    store.append(file_stream_id(file_id), events, 0, METADATA)
    a_month_on = datetime.now(UTC) + timedelta(days=30)
    escalation = EscalateFile(file_id=file_id, seen_version=1, now=a_month_on)
    outcomes = []

    def timer():
        try:
            outcomes.append(commands.escalate(store, escalation))
        except Exception as error:  # noqa: BLE001 - recorded for the assertions
            outcomes.append(error)

    threads = [threading.Thread(target=timer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    escalated = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
    assert len(escalated) == 1 and escalated[0].escalated
    refused = {type(outcome).__name__ for outcome in outcomes if isinstance(outcome, Exception)}
    assert refused <= {"VersionConflict", "ActionNotAllowed"}
    stored = [envelope.event_type for envelope in store.read_stream(file_stream_id(file_id))]
    assert stored == ["ApplicationSubmitted", "FileEscalated"]
    assert store.read_stream(file_stream_id(file_id))[1].metadata["actor_roles"] == ["system"]
