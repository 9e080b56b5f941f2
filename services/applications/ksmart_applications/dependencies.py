"""The applications service's event store, one per container: its committer
thread batches the appends of all the container's workers (group commit)."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

from ksmart_common.database import DB_URL_CONFIG_KEY, create_engine
from ksmart_common.eventstore import EventStore


class EventStoreProvider(DependencyProvider):
    def setup(self) -> None:
        self.engine = create_engine(
            self.container.config[DB_URL_CONFIG_KEY], pool_size=self.container.max_workers + 1
        )
        self.store = EventStore(self.engine)

    def stop(self) -> None:
        self.store.close()
        self.engine.dispose()

    kill = stop

    def get_dependency(self, worker_ctx) -> EventStore:
        return self.store
