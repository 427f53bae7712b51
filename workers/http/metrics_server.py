"""Serving `/metrics`: one endpoint per orderflow command on ORDERFLOW_METRICS_HOST:PORT.

`orderflow worker` runs several processes; its children write their metrics to files in a
private `PROMETHEUS_MULTIPROC_DIR` (prometheus_client's multiprocess mode) and the supervisor
serves their sum, plus the queue depths and its own restart count. The scheduler and the
webhook endpoint are one process each and serve their own registry.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from workers.queue.queue_metrics import QueueCollector
from workers.settings import Settings

log = logging.getLogger("orderflow.metrics")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass
class MetricsServer:
    """A running endpoint; `close` stops it."""

    server: WSGIServer
    url: str

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()


def serve(settings: Settings, registry: CollectorRegistry = REGISTRY) -> MetricsServer | None:
    """Serve `registry` when ORDERFLOW_METRICS_PORT is set; a port that cannot be had is logged
    and the process runs on without metrics (metrics never stop the work)."""
    if not settings.metrics_port:
        return None
    try:
        server, _thread = start_http_server(
            settings.metrics_port, addr=settings.metrics_host, registry=registry
        )
    except OSError as error:
        log.error(
            "metrics endpoint not started on %s:%d: %s",
            settings.metrics_host,
            settings.metrics_port,
            error.strerror or type(error).__name__,
        )
        return None
    url = f"http://{settings.metrics_host}:{settings.metrics_port}/metrics"
    log.info("metrics on %s", url)
    return MetricsServer(server, url)


@dataclass
class SupervisorStats:
    """What only the supervisor knows: its live children and how often one was restarted."""

    processes: int = 0
    restarts: int = 0


class SupervisorCollector(Collector):
    """`orderflow_worker_processes` and `orderflow_worker_restarts_total`."""

    def __init__(self, stats: SupervisorStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        """The current figures."""
        yield GaugeMetricFamily(
            "orderflow_worker_processes",
            "Worker processes alive under this supervisor.",
            value=self._stats.processes,
        )
        yield CounterMetricFamily(
            "orderflow_worker_restarts",
            "Worker processes that died and were restarted.",
            value=self._stats.restarts,
        )


def open_multiprocess_dir() -> Path:
    """A fresh private directory for the children's metric files, exported to them through the
    environment (they read it when they import prometheus_client, so before spawning them)."""
    path = Path(tempfile.mkdtemp(prefix="orderflow-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def close_multiprocess_dir(path: Path) -> None:
    """Forget and delete the children's metric files."""
    if os.environ.get(MULTIPROC_ENV) == str(path):
        del os.environ[MULTIPROC_ENV]
    shutil.rmtree(path, ignore_errors=True)


def process_died(path: Path, pid: int | None) -> None:
    """Drop a dead child's live gauges; its counters stay, so totals never go down."""
    if pid is not None:
        multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]


def multiprocess_registry(path: Path, *collectors: Collector) -> CollectorRegistry:
    """A registry summing the children's files, plus `collectors` of this process."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
    for collector in collectors:
        registry.register(collector)
    return registry


@dataclass
class WorkerMetrics:
    """The supervisor's side of worker metrics: the files directory, the endpoint, the stats."""

    path: Path
    stats: SupervisorStats
    queues: QueueCollector
    server: MetricsServer | None

    @classmethod
    def start(cls, settings: Settings, redis_url: str) -> WorkerMetrics | None:
        """Set up before the children are spawned; None when metrics are off."""
        if not settings.metrics_port:
            return None
        path = open_multiprocess_dir()
        stats = SupervisorStats()
        queues = QueueCollector(redis_url)
        registry = multiprocess_registry(path, queues, SupervisorCollector(stats))
        return cls(path, stats, queues, serve(settings, registry))

    def close(self) -> None:
        """Stop serving and delete the files (after the children have stopped)."""
        if self.server is not None:
            self.server.close()
        self.queues.close()
        close_multiprocess_dir(self.path)
