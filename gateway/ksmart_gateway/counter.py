"""The counter's endpoints: counter staff file an application in a
citizen's name, the citizen consenting with a one-time code. A mixin of
GatewayService (service.py), which holds the identity and applications
proxies they call.

Counter staff are a local body's front office (its clerks, who file to
their own body) and Akshaya centres' operators (who file to any body):
ksmart_common.domain.roles.COUNTER_ROLES. The journey, over HTTP only:

1. POST /counter/consents with the citizen's phone (any country, E.164) or
   email: the identity service sends the citizen a code whose message
   names the counter's office and says to give it only if they asked.
2. POST /documents for each scanned document, with the counter's token.
3. POST /counter/files with the application, its documents' hashes and
   {consent_id, code}: the citizen becomes the file's applicant (registered
   on first use, as a first sign-in registers them), and the file records
   who filed it (`filed_by`). The answer carries the file number for a
   printed acknowledgement; GET /files/{id} reads it again later.

Filing has an endpoint of its own rather than a `consent` in POST /files:
each endpoint then says exactly who may call it and what its body must
hold (a consent is required here and meaningless for a citizen filing for
themselves), and a citizen's filing stays as it was (docs/decisions.md).
"""

from __future__ import annotations

from ksmart_common.domain.roles import COUNTER_ROLES
from ksmart_common.rpc import call
from ksmart_gateway import schemas
from ksmart_gateway.api import PREFIX, ApiResult, api, request_meta
from ksmart_gateway.files import file_answer


class CounterEndpoints:
    @api(
        "POST",
        f"{PREFIX}/counter/consents",
        summary="Counter staff ask a citizen to consent, by a one-time code sent to their "
        "phone (any country, E.164) or email, to an application filed in their name; "
        "single use, 15 minutes, 5 tries, usable only by the caller",
        allowed_roles=COUNTER_ROLES,
        body=schemas.CodeRequest,
        response=schemas.ConsentResponse,
        status=202,
        tag="counter",
    )
    def request_consent(self, request, principal, body):
        consent = call(
            self.identity.request_consent,
            body["phone"],
            body["email"],
            body["language"],
            principal.as_actor(),
        )
        return ApiResult(consent, status=202)

    @api(
        "POST",
        f"{PREFIX}/counter/files",
        summary="Counter staff file an application in a citizen's name with the citizen's "
        "consent code; the citizen is the applicant, the file records who filed it. A clerk "
        "files to their own local body, an Akshaya operator to any",
        allowed_roles=COUNTER_ROLES,
        body=schemas.CounterFilingRequest,
        response=schemas.FileResponse,
        status=201,
        tag="counter",
    )
    def file_for_citizen(self, request, principal, body):
        consent = body.pop("consent")
        outcome = call(
            self.applications.file_for_citizen,
            body,
            consent,
            principal.as_actor(),
            request_meta(request),
        )
        document = outcome["file"]
        return file_answer(
            document,
            status=201 if outcome["created"] else 200,
            headers={"Location": f"{PREFIX}/files/{document['file_id']}"},
        )
