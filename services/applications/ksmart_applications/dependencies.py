"""The applications service's dependencies: its event store, one per
container (its committer thread batches the appends of all the container's
workers: group commit; every event is signed with the event key), caches of
reference data (catalogue definitions, local bodies), and the payment
provider."""

from __future__ import annotations

import time
from collections.abc import Callable

from nameko.extensions import DependencyProvider

from ksmart_applications.certificate_keys import CertificateKeys
from ksmart_applications.event_keys import EventKeys
from ksmart_applications.payments import PaymentProvider, provider_from_environment
from ksmart_common.database import DB_URL_CONFIG_KEY, create_engine
from ksmart_common.eventstore import EventStore


class EventStoreProvider(DependencyProvider):
    def setup(self) -> None:
        self.engine = create_engine(
            self.container.config[DB_URL_CONFIG_KEY], pool_size=self.container.max_workers + 1
        )
        # Every event appended is signed with the endorsed event key.
        self.store = EventStore(self.engine, signing=EventKeys(self.engine).signer)

    def stop(self) -> None:
        self.store.close()
        self.engine.dispose()

    kill = stop

    def get_dependency(self, worker_ctx) -> EventStore:
        return self.store


class DefinitionCache:
    """The catalogue's latest definition of each service, kept for a minute.

    A definition is immutable once published (its content hash names it), so
    caching only delays when a newly published version starts being used;
    it saves the catalogue round trip on every submission."""

    def __init__(self, ttl_seconds: float = 60.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: dict[str, tuple[float, dict]] = {}

    def get(self, service_code: str, fetch: Callable[[str], dict]) -> dict:
        now = time.monotonic()
        entry = self._entries.get(service_code)
        if entry is not None and now - entry[0] < self.ttl_seconds:
            return entry[1]
        definition = fetch(service_code)
        self._entries[service_code] = (now, definition)
        return definition


class DefinitionsByHash:
    """Definitions by content hash: immutable, so kept as long as there is
    room (a file's later commands need the definition it was filed under)."""

    def __init__(self, max_entries: int = 1_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, dict] = {}

    def get(self, content_hash: str, fetch: Callable[[str], dict]) -> dict:
        definition = self._entries.get(content_hash)
        if definition is None:
            definition = fetch(content_hash)
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[content_hash] = definition
        return definition


class CertificateKeysProvider(DependencyProvider):
    """Which key signs certificates (one per container, which remembers
    having recorded an environment key's public half)."""

    def setup(self) -> None:
        self.keys = CertificateKeys()

    def get_dependency(self, worker_ctx) -> CertificateKeys:
        return self.keys


class PaymentProviderProvider(DependencyProvider):
    """The fee payment provider configured by the environment, or None."""

    def setup(self) -> None:
        self.provider = provider_from_environment()

    def get_dependency(self, worker_ctx) -> PaymentProvider | None:
        return self.provider


class ReferenceDataProvider(DependencyProvider):
    """Other services' reference data, cached: the catalogue's definitions
    (latest, and pinned by hash) and the identity service's local bodies."""

    def setup(self) -> None:
        self.cache = DefinitionCache()
        self.by_hash = DefinitionsByHash()
        # Local bodies change rarely (a body formed or dissolved): a short
        # cache, like the latest definitions.
        self.local_bodies = DefinitionCache()

    def get_dependency(self, worker_ctx) -> ReferenceDataProvider:
        return self

    def latest(self, code: str, fetch: Callable[[str], dict]) -> dict:
        return self.cache.get(code, fetch)

    def pinned(self, content_hash: str, fetch: Callable[[str], dict]) -> dict:
        return self.by_hash.get(content_hash, fetch)

    def local_body(self, code: str, fetch: Callable[[str], dict | None]) -> dict | None:
        return self.local_bodies.get(code, fetch)
