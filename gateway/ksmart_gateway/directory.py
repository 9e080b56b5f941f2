"""The gateway's local-body directory endpoints: districts, and the local
bodies in them, for anyone. A mixin of GatewayService (service.py), which
holds the identity proxy they call (the identity service owns the
directory)."""

from __future__ import annotations

from ksmart_common.domain.vocabulary import LOCAL_BODY_CODE
from ksmart_common.errors import NotFound
from ksmart_common.rpc import call
from ksmart_gateway import schemas
from ksmart_gateway.api import PREFIX, PUBLIC, api
from ksmart_gateway.caching import read_mostly


class DirectoryEndpoints:
    @api(
        "GET",
        f"{PREFIX}/districts",
        summary="Kerala's districts",
        allowed_roles=PUBLIC,
        response=schemas.DistrictList,
        tag="directory",
    )
    def districts(self, request, principal):
        return read_mostly(request, {"districts": call(self.identity.list_districts)})

    @api(
        "GET",
        f"{PREFIX}/local-bodies",
        summary="Local bodies (grama, block and district panchayats, municipalities, "
        "corporations), by district and type",
        allowed_roles=PUBLIC,
        query=schemas.LocalBodyQuery,
        response=schemas.LocalBodyList,
        tag="directory",
    )
    def local_bodies(self, request, principal, query):
        local_bodies = call(self.identity.list_local_bodies, query["district"], query["type"])
        return read_mostly(request, {"local_bodies": local_bodies})

    @api(
        "GET",
        f"{PREFIX}/local-bodies/<string:code>",
        summary="One local body: its district, type, names and number of wards",
        allowed_roles=PUBLIC,
        response=schemas.LocalBody,
        tag="directory",
    )
    def local_body(self, request, principal, code):
        if not LOCAL_BODY_CODE.match(code):
            raise NotFound(f"no local body {code!r}")
        return read_mostly(request, call(self.identity.get_local_body, code))
