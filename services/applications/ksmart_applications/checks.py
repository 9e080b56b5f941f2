"""An application checked without filing it: the very checks a submission
runs (intake.application_problems, against the service's latest
definition, the caller's own uploads and the local-body directory), so a
form can name every problem at once before the citizen has chosen an
office. Nothing is stored and no number is taken."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from ksmart_applications.uploads import find_uploads
from ksmart_common.domain import intake
from ksmart_common.domain.file import Actor


def application_problems(
    engine: sa.Engine,
    application: Mapping[str, Any],
    actor: Actor,
    lang: str,
    *,
    latest_definition: Callable[[str], Mapping[str, Any]],
    local_body_entry: Callable[[str], Mapping[str, Any] | None],
) -> list[dict[str, str]]:
    """Every problem of `application` (service_code, form, documents:
    code -> sha256 of the actor's upload, and local_body or None), in
    `lang`; [] when it may be filed. Without a local body the office is
    not checked: the rest is."""
    definition = latest_definition(application["service_code"])
    uploads = find_uploads(engine, actor.actor_id, application.get("documents") or {})
    local_body = application.get("local_body")
    return intake.application_problems(
        definition,
        application["form"],
        uploads,
        lang,
        local_body=local_body_entry(local_body) if local_body else None,
        local_body_code=local_body or None,
    )
