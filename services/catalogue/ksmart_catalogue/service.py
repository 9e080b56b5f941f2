"""The catalogue service: read-only RPC over the loaded catalogue.

No database: the definitions ship with the package and never change while the
service runs, so any number of replicas answer identically and callers may
cache an answer by its content hash for ever.
"""

from __future__ import annotations

from typing import Any

from ksmart_catalogue.dependencies import CatalogueProvider
from ksmart_common.errors import InvalidInput, NotFound
from ksmart_common.operations import Operations
from ksmart_common.rpc import rpc

# A caller asking for a code or hash that doesn't exist is an answer, not a
# fault: nameko logs these as expected warnings, not as errors.
CALLER_ERRORS = (NotFound, InvalidInput)


class CatalogueService:
    name = "catalogue"

    # Health, readiness and metrics on the operations port; times every worker.
    ops = Operations()

    catalogue = CatalogueProvider()

    @rpc(expected_exceptions=CALLER_ERRORS)
    def list_services(
        self,
        text: str | None = None,
        category: str | None = None,
        local_body_type: str | None = None,
    ) -> list[dict[str, Any]]:
        """Latest version of each service (summaries), optionally searched by
        text in either language, category and kind of local body."""
        return self.catalogue.list_services(text, category, local_body_type)

    @rpc
    def categories(self) -> list[dict[str, Any]]:
        return self.catalogue.categories()

    @rpc(expected_exceptions=CALLER_ERRORS)
    def get_service(self, code: str, version: int | None = None) -> dict[str, Any]:
        """The full definition with "content_hash"; NotFound for an unknown
        code or version."""
        return self.catalogue.get_service(code, version)

    @rpc(expected_exceptions=CALLER_ERRORS)
    def get_definition(self, content_hash: str) -> dict[str, Any]:
        """The definition with this content hash, however old; NotFound if none."""
        return self.catalogue.get_by_hash(content_hash)

    @rpc
    def health(self) -> dict[str, Any]:
        # The catalogue loaded at start-up or the container would not be
        # running; report what it serves so an operator can tell deployments apart.
        return {
            "status": "ok",
            "service": self.name,
            "services": len(self.catalogue.list_services()),
            "versions": self.catalogue.version_count(),
        }
