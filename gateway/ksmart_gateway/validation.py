"""The gateway's check of an application without filing it: every problem
a submission would name (fields, documents and, when one is given, the
office), at once, so a form can show them all before the citizen has even
chosen the office. A mixin of GatewayService (service.py), which holds the
applications proxy it calls.

For those who file: citizens, and counter staff filing for a citizen (the
documents it checks are the caller's own uploads, which only a signed-in
caller has, and each check reads the catalogue and the upload records,
work an anonymous caller should not be able to ask for without limit)."""

from __future__ import annotations

from ksmart_common.domain.roles import CITIZEN, COUNTER_ROLES
from ksmart_common.rpc import call
from ksmart_gateway import schemas
from ksmart_gateway.api import PREFIX, ApiResult, api, request_meta


class ApplicationCheckEndpoints:
    @api(
        "POST",
        f"{PREFIX}/services/<string:code>/validation",
        summary="Check an application to this service without filing it: every problem "
        "a submission would have, at once (the office is checked only when given)",
        allowed_roles=(CITIZEN, *COUNTER_ROLES),
        body=schemas.ApplicationCheckRequest,
        response=schemas.ApplicationCheckResponse,
        tag="catalogue",
    )
    def check_application(self, request, principal, code, body):
        problems = call(
            self.applications.check_application,
            {"service_code": code, **body},
            principal.as_actor(),
            request_meta(request),
        )
        return ApiResult({"problems": problems})
