"""The catalogue as a nameko dependency: loaded once per container.

Loading reads and validates every definition file, so it happens in `setup`
(when the container starts) and a broken catalogue stops the service from
starting at all, with every problem in the log, rather than failing the first
request. The loaded Catalogue is read-only, so every worker shares it.
"""

from __future__ import annotations

from nameko.extensions import DependencyProvider

from ksmart_catalogue.catalogue import Catalogue
from ksmart_common.config import env

# Points a deployment at definitions kept outside the package (a mounted
# volume, say); empty means the definitions shipped with the package.
CATALOGUE_DIR_VARIABLE = "KSMART_CATALOGUE_DIR"


class CatalogueProvider(DependencyProvider):
    catalogue: Catalogue

    def setup(self) -> None:
        directory = self.container.config.get("CATALOGUE_DIR") or env(CATALOGUE_DIR_VARIABLE, "")
        self.catalogue = Catalogue.load(directory or None)

    def get_dependency(self, worker_ctx: object) -> Catalogue:
        return self.catalogue
