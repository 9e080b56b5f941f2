"""The gateway's views of files in progress, read from the workflow
service's projections: an inbox of the files waiting on the caller, a
citizen's own files, a file tracked by its number without signing in, an
office's counts, and the public statistics. A mixin of GatewayService
(service.py)."""

from __future__ import annotations

from nameko.rpc import RpcProxy

from ksmart_common.domain.roles import CITIZEN, OFFICIAL_ROLES
from ksmart_common.domain.vocabulary import is_file_number
from ksmart_common.errors import NotFound
from ksmart_common.rpc import call
from ksmart_gateway import schemas
from ksmart_gateway.api import PREFIX, PUBLIC, ApiResult, api
from ksmart_gateway.caching import public


class InboxEndpoints:
    workflow = RpcProxy("workflow")

    @api(
        "GET",
        f"{PREFIX}/inbox",
        summary="Files waiting on the caller: an official's role in their local body, "
        "or a citizen's own files returned to them; soonest due first, filterable by "
        "service, state, overdue and assignment",
        allowed_roles=(CITIZEN, *OFFICIAL_ROLES),
        query=schemas.InboxQuery,
        response=schemas.InboxResponse,
        tag="inbox",
    )
    def inbox(self, request, principal, query):
        filters = {
            "service_code": query["service"],
            "state": query["state"],
            "overdue": query["overdue"],
            "assigned": query["assigned"],
        }
        return ApiResult(
            call(
                self.workflow.inbox,
                principal.as_actor(),
                query["limit"],
                query["cursor"],
                filters,
            )
        )

    @api(
        "GET",
        f"{PREFIX}/files",
        summary="The caller's own files (a citizen's applications), newest first, each "
        "saying where it stands and whether something is needed from them",
        allowed_roles=(CITIZEN,),
        query=schemas.PageQuery,
        response=schemas.ApplicantFiles,
    )
    def my_files(self, request, principal, query):
        return ApiResult(
            call(
                self.workflow.applicant_files,
                principal.as_actor(),
                query["limit"],
                query["cursor"],
            )
        )

    @api(
        "GET",
        f"{PREFIX}/track/<path:number>",
        summary="Anyone tracks a file by its number: its state, the role it waits on and "
        "by when; nothing about the people on it",
        allowed_roles=PUBLIC,
        response=schemas.TrackedFile,
        tag="tracking",
    )
    def track(self, request, principal, number):
        if not is_file_number(number):
            # No file has a number of another shape: answered without a call.
            raise NotFound("no file has this number")
        return ApiResult(call(self.workflow.track, number))

    @api(
        "GET",
        f"{PREFIX}/inbox/counts",
        summary="For the caller's local body: files waiting on each role, overdue, unassigned",
        allowed_roles=OFFICIAL_ROLES,
        response=schemas.OfficeCounts,
        tag="inbox",
    )
    def office_counts(self, request, principal):
        return ApiResult(call(self.workflow.office_counts, principal.as_actor()))

    @api(
        "GET",
        f"{PREFIX}/inbox/officials",
        summary="The active officials of the caller's local body who hold a role: whom a "
        "file waiting on that role may be given to (POST /files/{id}/assignment)",
        allowed_roles=OFFICIAL_ROLES,
        query=schemas.ColleaguesQuery,
        response=schemas.Colleagues,
        tag="inbox",
    )
    def colleagues(self, request, principal, query):
        officials = call(self.identity.colleagues, query["role"], principal.as_actor())
        return ApiResult({"officials": officials})

    @api(
        "GET",
        f"{PREFIX}/statistics",
        summary="For the public and managers: files received, decided, pending and overdue, "
        "and the median days to a decision, per local body and service",
        allowed_roles=PUBLIC,
        query=schemas.StatisticsQuery,
        response=schemas.Statistics,
        tag="statistics",
    )
    def statistics(self, request, principal, query):
        body = call(self.workflow.statistics, query["local_body"], query["service"])
        return ApiResult(body, headers={"Cache-Control": public(60)})
