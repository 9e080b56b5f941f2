"""The gateway's file endpoints: a citizen applies, and a file is read,
decided on and handed to an official. A mixin of GatewayService
(service.py), which holds the applications proxy they call.

A file's answer carries its version as the ETag, which a decision sends
back as If-Match: a decision taken on a file that changed meanwhile is
refused (409), never applied to a state its maker did not see."""

from __future__ import annotations

import uuid
from typing import Any

from ksmart_common.domain.roles import AKSHAYA_OPERATOR, AUDITOR, CITIZEN, OFFICIAL_ROLES
from ksmart_common.errors import InvalidInput
from ksmart_common.rpc import call
from ksmart_gateway import log_standing, schemas
from ksmart_gateway.api import PREFIX, ApiResult, api, instance, request_meta

# Who may read files (each service then decides which files): citizens,
# officials, auditors and Akshaya operators (the files they filed, for the
# acknowledgement they print); administrators manage people, not files.
FILE_READERS = (CITIZEN, *OFFICIAL_ROLES, AUDITOR, AKSHAYA_OPERATOR)


def file_answer(
    view: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
    schema: type[schemas.FileResponse] = schemas.FileResponse,
) -> ApiResult:
    """A file as the applications service shows it (FileState.view), tagged
    with its version."""
    return ApiResult(
        instance(schema).dump(view),
        status=status,
        headers={**(headers or {}), "ETag": f'"{view["version"]}"'},
    )


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise InvalidInput(
            "If-Match must be the ETag of the file (its version)",
            [{"field": "If-Match", "message": 'expected a quoted version, as "3"'}],
        )
    return int(tag)


class FileEndpoints:
    @api(
        "POST",
        f"{PREFIX}/files",
        summary="Submit an application; it becomes a file",
        allowed_roles=(CITIZEN,),
        body=schemas.SubmitApplicationRequest,
        response=schemas.FileResponse,
        status=201,
        headers=("Idempotency-Key",),
    )
    def submit(self, request, principal, body):
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 1 <= len(key) <= 200:
            raise InvalidInput(
                "bad Idempotency-Key",
                [{"field": "Idempotency-Key", "message": "1 to 200 characters"}],
            )
        outcome = call(
            self.applications.submit_application,
            body["service_code"],
            body["local_body"],
            body["form"],
            principal.as_actor(),
            # One id per request, so a redelivery of this call makes no second file.
            request_meta(request, idempotency_key=key, command_id=str(uuid.uuid4())),
            body["documents"],
        )
        document = outcome["file"]
        return file_answer(
            document,
            status=201 if outcome["created"] else 200,
            headers={"Location": f"{PREFIX}/files/{document['file_id']}"},
        )

    @api(
        "GET",
        f"{PREFIX}/files/<uuid:file_id>",
        summary="A file: its state, the timeline of decisions, and its submission's and "
        "certificate's inclusion proofs in the public log",
        allowed_roles=FILE_READERS,
        response=log_standing.FileWithTransparency,
    )
    def get_file(self, request, principal, file_id):
        view = call(self.applications.get_file, str(file_id), principal.as_actor())
        view["transparency"] = log_standing.standing(self.checkpointer, view.pop("log_entries"))
        return file_answer(view, schema=log_standing.FileWithTransparency)

    @api(
        "POST",
        f"{PREFIX}/files/<uuid:file_id>/actions",
        summary="Take an action on a file (verify, approve, reject, return, resubmit)",
        allowed_roles=(CITIZEN, *OFFICIAL_ROLES),
        body=schemas.ActionRequest,
        response=schemas.FileResponse,
        headers=("If-Match",),
    )
    def take_action(self, request, principal, file_id, body):
        header_version = parse_if_match(request.headers.get("If-Match"))
        expected = body["expected_version"]
        if header_version is not None and expected is not None and header_version != expected:
            raise InvalidInput(
                "If-Match and expected_version disagree",
                [{"field": "If-Match", "message": "send one, or the same version"}],
            )
        document = call(
            self.applications.take_action,
            str(file_id),
            body["action"],
            body["remarks"],
            header_version if header_version is not None else expected,
            principal.as_actor(),
            # One id per request, so a redelivery of this call decides nothing twice.
            request_meta(request, command_id=str(uuid.uuid4())),
            body["answers"],
        )
        return file_answer(document)

    @api(
        "POST",
        f"{PREFIX}/files/<uuid:file_id>/assignment",
        summary="Hand a file to a named official of its body who holds the role it waits on "
        "(section officers and the secretary; an official may take a file himself)",
        allowed_roles=OFFICIAL_ROLES,
        body=schemas.AssignRequest,
        response=schemas.FileResponse,
        tag="inbox",
    )
    def assign(self, request, principal, file_id, body):
        document = call(
            self.applications.assign,
            str(file_id),
            str(body["official_id"]),
            principal.as_actor(),
            request_meta(request),
        )
        return file_answer(document)
