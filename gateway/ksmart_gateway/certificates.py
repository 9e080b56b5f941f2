"""The gateway's certificate endpoints: a granted file's certificate as a
PDF for those who may read the file, and for anyone, a certificate checked
by its number or by its QR code's text, and the keys to check one offline.
A mixin of GatewayService (service.py), which holds the applications proxy
they call (the applications service issues and signs certificates)."""

from __future__ import annotations

from eventlet import tpool
from werkzeug.wrappers import Response

from ksmart_common import config
from ksmart_common.domain import certificate
from ksmart_common.domain.intake import language
from ksmart_common.errors import NotFound
from ksmart_common.rpc import call
from ksmart_gateway import certificate_pdf, log_standing, schemas
from ksmart_gateway.api import PREFIX, PUBLIC, ApiResult, api, instance
from ksmart_gateway.caching import public
from ksmart_gateway.files import FILE_READERS

# No certificate's number is this long: a longer path is answered here,
# without a call.
MAX_CERTIFICATE_NUMBER_LENGTH = 100


class CertificateEndpoints:
    @api(
        "GET",
        f"{PREFIX}/files/<uuid:file_id>/certificate",
        summary="The certificate a granted file yields, as PDF (with a QR code that "
        "verifies it offline): for those who may read the file",
        allowed_roles=FILE_READERS,
        tag="certificates",
        binary_response=True,
    )
    def certificate_pdf(self, request, principal, file_id):
        issued = call(self.applications.certificate_for_reader, str(file_id), principal.as_actor())
        pdf = tpool.execute(
            certificate_pdf.render_pdf,
            issued["certificate"],
            language(request.headers.get("Accept-Language")),
            fields=issued["fields"],
            # Printed on the certificate: the platform's public address, never
            # whatever Host header this request came with.
            base_url=config.env("KSMART_PUBLIC_URL", ""),
        )
        number = issued["certificate"]["payload"]["certificate_number"].replace("/", "-")
        return Response(
            pdf,
            content_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="certificate-{number}.pdf"',
                "Cache-Control": "private, max-age=3600",
            },
        )

    @api(
        "GET",
        f"{PREFIX}/certificates/<path:number>",
        summary="Anyone checks a certificate by its number: the certificate as issued, "
        "and whether it is genuine and valid",
        allowed_roles=PUBLIC,
        response=log_standing.CertificateVerdictWithTransparency,
        tag="certificates",
    )
    def check_certificate(self, request, principal, number):
        if len(number) > MAX_CERTIFICATE_NUMBER_LENGTH:
            raise NotFound("no certificate has this number")
        verdict = call(self.applications.check_certificate, number)
        return self._with_transparency(verdict, verdict.pop("log_entry", None))

    @api(
        "POST",
        f"{PREFIX}/certificates/verify",
        summary="Anyone checks the text of a certificate's QR code against the published keys",
        allowed_roles=PUBLIC,
        body=schemas.CertificateCheck,
        response=log_standing.CertificateVerdictWithTransparency,
        tag="certificates",
    )
    def verify_certificate_qr(self, request, principal, body):
        try:
            document = certificate.parse_qr_text(body["qr_text"])
        except ValueError as error:
            return ApiResult({"found": False, "valid": False, "problems": [f"malformed: {error}"]})
        problems = call(self.applications.certificate_problems, document)
        entry = None if problems else call(self.applications.certificate_log_entry, document)
        # The caller holds the QR code, so they hold its contents already.
        verdict = {
            "found": True,
            "valid": not problems,
            "problems": problems,
            "certificate": document["payload"],
        }
        return self._with_transparency(verdict, entry)

    def _with_transparency(self, verdict: dict, entry: dict | None) -> ApiResult:
        """The verdict with a genuine certificate's issue in the public log
        (log_standing), kept by caches only once a checkpoint includes it."""
        transparency = None
        if verdict["valid"] and entry is not None:
            transparency = log_standing.standing(self.checkpointer, {"certificate": entry})
        verdict["transparency"] = transparency
        return ApiResult(
            instance(log_standing.CertificateVerdictWithTransparency).dump(verdict),
            headers={"Cache-Control": log_standing.cache_control(transparency)},
        )

    @api(
        "GET",
        f"{PREFIX}/certificate-keys",
        summary="Every public key a genuine certificate may be signed with (JWKS), to "
        "verify certificates offline",
        allowed_roles=PUBLIC,
        tag="certificates",
    )
    def certificate_keys(self, request, principal):
        body = call(self.applications.certificate_keys_jwks)
        return ApiResult(body, headers={"Cache-Control": public(3600)})
