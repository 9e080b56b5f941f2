"""An official (or the applicant) acting on a file over HTTP, as from the
inbox: POST /files/{id}/actions with the caller's token, and If-Match when
the caller names the version it read."""

from __future__ import annotations

from typing import Any

import requests


def act(
    platform,
    user: str,
    file_id: str,
    action: str,
    *,
    remarks: str | None = None,
    version: int | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """The gateway's answer, unchecked: for tests of refusals."""
    sent = {**platform.as_user(user), **(headers or {})}
    if version is not None:
        sent["If-Match"] = f'"{version}"'
    return requests.post(
        f"{platform.base_url}/api/v1/files/{file_id}/actions",
        json={"action": action, "remarks": remarks},
        headers=sent,
        timeout=10,
    )


def take(platform, user: str, file_id: str, action: str, **how: Any) -> dict[str, Any]:
    """The action taken (200, or the test fails with the gateway's answer);
    the file as it now is."""
    reply = act(platform, user, file_id, action, **how)
    assert reply.status_code == 200, reply.text
    return reply.json()
