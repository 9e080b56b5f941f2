"""A file's first events, decided by the real domain code from a complete
sample application, for tests that write to the event store directly."""

from __future__ import annotations

import hashlib
from typing import Any

from ksmart_catalogue.samples import documents_needed, sample_form
from ksmart_common.domain.file import Actor, submit_application
from ksmart_common.domain.intake import Upload
from ksmart_common.envelope import NewEvent


def sample_uploads(definition: dict[str, Any], form: dict[str, Any]) -> dict[str, Upload]:
    """A fitting upload for every document the form needs."""
    return {
        spec["code"]: Upload(
            hashlib.sha256(spec["code"].encode()).hexdigest(), spec["formats"][0], 2048
        )
        for spec in documents_needed(definition, form)
    }


def submission(
    file_id: str,
    definition: dict[str, Any],
    local_body: str,
    applicant: Actor,
    answers: dict[str, Any] | None = None,
) -> list[NewEvent]:
    form = sample_form(definition, answers)
    uploads = sample_uploads(definition, form)
    return submit_application(file_id, definition, local_body, applicant, form, uploads)
