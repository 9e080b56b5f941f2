"""The gateway's catalogue endpoints: the services a citizen can apply for,
their categories, and each service's definition, today's or the one a file
was filed under. A mixin of GatewayService (service.py)."""

from __future__ import annotations

from nameko.rpc import RpcProxy

from ksmart_common.domain.documents import check_sha256
from ksmart_common.rpc import call
from ksmart_gateway import schemas
from ksmart_gateway.api import PREFIX, PUBLIC, api
from ksmart_gateway.caching import CATALOGUE_MAX_AGE, IMMUTABLE, cacheable, public, read_mostly


class CatalogueEndpoints:
    catalogue = RpcProxy("catalogue")

    @api(
        "GET",
        f"{PREFIX}/services",
        summary="Every service a citizen can apply for",
        allowed_roles=PUBLIC,
        query=schemas.ServiceQuery,
        response=schemas.ServiceList,
        tag="catalogue",
    )
    def list_services(self, request, principal, query):
        services = call(
            self.catalogue.list_services, query["q"], query["category"], query["local_body_type"]
        )
        return read_mostly(request, {"services": services})

    @api(
        "GET",
        f"{PREFIX}/categories",
        summary="The categories services are listed under, with their names",
        allowed_roles=PUBLIC,
        response=schemas.CategoryList,
        tag="catalogue",
    )
    def categories(self, request, principal):
        return read_mostly(request, {"categories": call(self.catalogue.categories)})

    @api(
        "GET",
        f"{PREFIX}/services/<string:code>",
        summary="One service's complete checklist in one answer: who may apply, every "
        "field, every document (formats, size limits, when needed), fees, time limit, "
        "offices and workflow; the latest version, or ?version=N",
        allowed_roles=PUBLIC,
        query=schemas.ServiceVersionQuery,
        tag="catalogue",
    )
    def get_service(self, request, principal, code, query):
        version = query["version"]
        definition = call(self.catalogue.get_service, code, version)
        # Its content hash names this exact definition: the perfect ETag.
        cache_control = IMMUTABLE if version else public(CATALOGUE_MAX_AGE)
        return cacheable(request, definition, definition["content_hash"], cache_control)

    @api(
        "GET",
        f"{PREFIX}/definitions/<string:content_hash>",
        summary="The definition with this content hash, however old: what a file was "
        "filed under (its definition_hash)",
        allowed_roles=PUBLIC,
        tag="catalogue",
    )
    def get_definition(self, request, principal, content_hash):
        definition = call(self.catalogue.get_definition, check_sha256(content_hash))
        return cacheable(request, definition, definition["content_hash"], IMMUTABLE)
