"""The gateway's staff endpoints: administrators list, create and change
officials, auditors and administrators. A mixin of GatewayService
(service.py), which holds the identity proxy they call."""

from __future__ import annotations

from ksmart_common.domain.roles import ADMINISTRATOR
from ksmart_common.rpc import call
from ksmart_gateway import schemas
from ksmart_gateway.api import PREFIX, ApiResult, api, instance


class StaffEndpoints:
    @api(
        "GET",
        f"{PREFIX}/admin/staff",
        summary="Officials, auditors and administrators, by local body or kind",
        allowed_roles=(ADMINISTRATOR,),
        query=schemas.StaffQuery,
        response=schemas.StaffList,
        tag="administration",
    )
    def list_staff(self, request, principal, query):
        staff = call(
            self.identity.list_staff, query["local_body"], query["kind"], principal.as_actor()
        )
        return ApiResult({"staff": staff})

    @api(
        "POST",
        f"{PREFIX}/admin/staff",
        summary="Create an official (roles in a local body, optionally some wards), an "
        "auditor or an administrator",
        allowed_roles=(ADMINISTRATOR,),
        body=schemas.StaffCreateRequest,
        response=schemas.StaffMember,
        status=201,
        tag="administration",
    )
    def create_staff(self, request, principal, body):
        created = call(self.identity.create_staff, body, principal.as_actor())
        return ApiResult(instance(schemas.StaffMember).dump(created), status=201)

    @api(
        "PATCH",
        f"{PREFIX}/admin/staff/<uuid:user_id>",
        summary="Change roles, jurisdiction or standing (disabled); the person's sessions end",
        allowed_roles=(ADMINISTRATOR,),
        body=schemas.StaffUpdateRequest,
        tag="administration",
    )
    def update_staff(self, request, principal, user_id, body):
        updated = call(self.identity.update_staff, str(user_id), body, principal.as_actor())
        return ApiResult({"user": updated})
