"""A nameko dependency that gives each worker the service's SQLAlchemy 2 engine.

Methods open their own transaction (`with self.db.begin() as conn:`) and so
commit inside the method. That matters: nameko acks a consumed message before
a dependency's `worker_result` runs, so a commit there would come too late to
be safe.

The engine is created once per container and disposed when it stops. Under
eventlet, psycopg2 is made cooperative by the runner (psycogreen), so a
query waits without blocking the other workers.
"""

from __future__ import annotations

import sqlalchemy as sa
from nameko.extensions import DependencyProvider

DB_URL_CONFIG_KEY = "DB_URL"


def create_engine(url: str, pool_size: int = 10) -> sa.Engine:
    # One connection per concurrent worker at most: a replica can never take
    # more than its share of the server's max_connections.
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


class Database(DependencyProvider):
    def setup(self) -> None:
        url = self.container.config[DB_URL_CONFIG_KEY]
        self.engine = create_engine(url, pool_size=self.container.max_workers)

    def stop(self) -> None:
        self.engine.dispose()

    def kill(self) -> None:
        self.engine.dispose()

    def get_dependency(self, worker_ctx) -> sa.Engine:
        return self.engine
