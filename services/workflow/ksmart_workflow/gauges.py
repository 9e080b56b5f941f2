"""Files pending and overdue per local body, as Prometheus gauges: counted
from the projection when Prometheus scrapes (one grouped query), so the
numbers are as fresh as the projection and cost nothing between scrapes."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily

from ksmart_common.logging import get_logger
from ksmart_workflow import projection

log = get_logger(__name__)


class FilesCollector:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def collect(self):
        pending = GaugeMetricFamily(
            "ksmart_files_pending",
            "Files waiting on the office, per local body",
            labels=["local_body"],
        )
        overdue = GaugeMetricFamily(
            "ksmart_files_overdue",
            "Files waiting on the office past their state's time limit, per local body",
            labels=["local_body"],
        )
        try:
            rows = projection.pending_by_body(self.engine, datetime.now(UTC))
        except sa.exc.SQLAlchemyError as error:
            # A scrape must still answer: readiness reports the database.
            log.warning("file gauges not counted", error=type(error).__name__)
            rows = []
        for local_body, waiting, late in rows:
            pending.add_metric([local_body], waiting)
            overdue.add_metric([local_body], late)
        yield pending
        yield overdue


class FileGauges(DependencyProvider):
    """Registers the collector with the service's database engine while
    the service runs."""

    def start(self) -> None:
        engine = next(
            provider.engine
            for provider in self.container.dependencies
            if isinstance(getattr(provider, "engine", None), sa.Engine)
        )
        self.collector = FilesCollector(engine)
        REGISTRY.register(self.collector)

    def stop(self) -> None:
        collector = getattr(self, "collector", None)
        if collector is not None:
            REGISTRY.unregister(collector)
            self.collector = None

    kill = stop
