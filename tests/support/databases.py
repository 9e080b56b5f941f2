"""A fresh database (and fresh roles) per test: created, migrated, dropped."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from ksmart_common import config
from ksmart_common.migrations import (
    RoleNames,
    drop_database,
    drop_role,
    roles_in_database,
    upgrade,
    url_for_database,
)


@dataclass(frozen=True)
class ServiceDatabase:
    service: str
    name: str
    roles: RoleNames
    admin_url: str

    def url_as(self, role: str) -> str:
        """URL connecting as one of the service's login roles."""
        return url_for_database(self.admin_url, self.name, user=self.roles.of(role))

    @property
    def service_url(self) -> str:
        return self.url_as(self.service)

    @property
    def superuser_url(self) -> str:
        return url_for_database(self.admin_url, self.name)


@contextlib.contextmanager
def fresh_service_database(
    service: str, roles: RoleNames | None = None
) -> Iterator[ServiceDatabase]:
    token = uuid.uuid4().hex[:10]
    roles = roles or RoleNames(prefix=f"kt{token}_")
    admin_url = config.admin_database_url()
    database = ServiceDatabase(service, f"kt{token}_{service}", roles, admin_url)
    try:
        upgrade(service, admin_url, database.name, roles)
        yield database
    finally:
        drop_database(admin_url, database.name)
        for role in roles_in_database(service):
            drop_role(admin_url, roles.of(role))
