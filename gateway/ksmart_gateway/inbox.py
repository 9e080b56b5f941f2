"""The gateway's views of files in progress, read from the workflow
service's projections: an inbox of the files waiting on the caller, an
office's counts, and the public statistics. A mixin of GatewayService
(service.py)."""

from __future__ import annotations

from nameko.rpc import RpcProxy

from ksmart_common.domain.roles import CITIZEN, OFFICIAL_ROLES
from ksmart_common.rpc import call
from ksmart_gateway import schemas
from ksmart_gateway.api import PREFIX, PUBLIC, ApiResult, api


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
        return ApiResult(body, headers={"Cache-Control": "public, max-age=60"})
