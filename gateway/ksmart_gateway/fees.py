"""The gateway's fee endpoints: a citizen starts paying what a file owes,
and the payment provider confirms by a signed callback. A mixin of
GatewayService (service.py), which holds the applications proxy they call."""

from __future__ import annotations

from ksmart_common import config
from ksmart_common.domain.roles import CITIZEN
from ksmart_common.errors import InvalidInput
from ksmart_common.rpc import call
from ksmart_common.signatures import PAYMENT_SIGNATURE_HEADER
from ksmart_gateway import schemas
from ksmart_gateway.api import PREFIX, PUBLIC, ApiResult, api, read_callback, request_meta
from ksmart_gateway.return_urls import RETURN_ORIGINS_ENV, allowed_origins, return_url_problem

# Where a provider may send a citizen back after paying (the portal's
# origin); read once at start, and a wrong entry stops the gateway starting.
RETURN_ORIGINS = allowed_origins(config.env(RETURN_ORIGINS_ENV, ""))


class FeeEndpoints:
    @api(
        "POST",
        f"{PREFIX}/files/<uuid:file_id>/payments",
        summary="Start paying the fee due on your file; the provider confirms by callback",
        allowed_roles=(CITIZEN,),
        body=schemas.PaymentStart,
        body_optional=True,
        response=schemas.PaymentResponse,
        status=201,
        tag="fees",
    )
    def start_payment(self, request, principal, file_id, body):
        return_url = body["return_url"]
        if return_url is not None:
            problem = return_url_problem(return_url, RETURN_ORIGINS)
            if problem is not None:
                raise InvalidInput(
                    "the return URL is not allowed", [{"field": "return_url", "message": problem}]
                )
        payment = call(
            self.applications.start_payment, str(file_id), principal.as_actor(), return_url
        )
        return ApiResult(payment, status=201)

    @api(
        "POST",
        f"{PREFIX}/payments/callback",
        summary="The payment provider's callback: the body is signed by the provider "
        f"({PAYMENT_SIGNATURE_HEADER}), and nothing else is trusted",
        allowed_roles=PUBLIC,
        response=schemas.PaymentCallbackResponse,
        tag="fees",
        headers=(PAYMENT_SIGNATURE_HEADER,),
        checks_credentials=True,
    )
    def payment_callback(self, request, principal):
        outcome = call(
            self.applications.payment_callback,
            read_callback(request),
            request.headers.get(PAYMENT_SIGNATURE_HEADER),
            request_meta(request),
        )
        return ApiResult(outcome)
