"""`orderflow worker`: N dramatiq worker processes, each restarted if it dies.

The `dramatiq` command stops every process when one dies; a supervisor that restarts the
dead one keeps the others' in-flight work going.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from multiprocessing.process import BaseProcess

import dramatiq

from models.db.uow import QUEUES
from tasks.orders.placing import warm_calendars
from workers.http.metrics_server import WorkerMetrics, process_died
from workers.logs import configure_logging
from workers.queue import embedded_redis as embedded
from workers.queue.broker import DeadWorkerSweeper
from workers.queue.ingress import IngressConsumer
from workers.runtime import open_runtime, prepare_database
from workers.settings import Settings
from workers.signals import stop_event_on_signals

log = logging.getLogger("orderflow.worker")
STOP_TIMEOUT_MS = 30_000
RESTART_PAUSE_S = 0.5


def worker_process(threads: int, queues: list[str], log_level: str) -> None:
    """One worker process: consume until SIGTERM, then finish in-flight jobs and requeue."""
    settings = Settings()
    configure_logging(log_level, settings.log_format)
    stop = stop_event_on_signals()
    parent = os.getppid()
    rt = open_runtime(settings)
    rt.declare_actors()
    with rt.new_uow() as uow:
        warm_calendars(uow, rt.clock().date())
    worker = dramatiq.Worker(rt.broker, worker_threads=threads, queues=set(queues))
    worker.start()
    ingress_stop = threading.Event()
    consumers = [
        IngressConsumer(rt, ingress_stop, index) for index in range(rt.settings.ingress_consumers)
    ]
    for consumer in consumers:
        consumer.start()
    log.info("worker process %d ready: queues=%s threads=%d", os.getpid(), queues, threads)
    # An orphan (its supervisor was SIGKILLed) stops too, rather than run unsupervised.
    while not stop.wait(1.0):
        if os.getppid() != parent:
            break
    log.info("worker process %d stopping", os.getpid())
    # The ingress finishes its batch first, so what it commits still reaches running actors.
    ingress_stop.set()
    for consumer in consumers:
        consumer.join(STOP_TIMEOUT_MS / 1000)
    worker.stop(timeout=STOP_TIMEOUT_MS)
    rt.close()


def _spawn(threads: int, queues: list[str], log_level: str) -> BaseProcess:
    # spawn, not fork: each child builds its own connections and threads from scratch.
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=worker_process, args=(threads, queues, log_level), name="orderflow-worker"
    )
    process.start()
    return process


def supervise(processes: int, threads: int, queues: list[str], log_level: str = "INFO") -> None:
    """Run `processes` workers until SIGTERM/SIGINT; restart any that die meanwhile."""
    settings = Settings()
    configure_logging(log_level, settings.log_format)
    unknown = set(queues) - set(QUEUES)
    if unknown:
        raise ValueError(f"unknown queues: {sorted(unknown)}; known: {list(QUEUES)}")
    prepare_database(settings)
    server = None
    if not settings.redis_url:
        # Hold the embedded server for the children's whole life, and point them at it.
        server = embedded.acquire(settings.data_dir)
        os.environ["ORDERFLOW_REDIS_URL"] = server.url
    stop = stop_event_on_signals()
    redis_url = os.environ.get("ORDERFLOW_REDIS_URL", settings.redis_url)
    DeadWorkerSweeper(redis_url, settings, stop).start()
    metrics = WorkerMetrics.start(settings, redis_url)  # before the children: they inherit it
    children = [_spawn(threads, queues, log_level) for _ in range(processes)]
    try:
        _watch(children, stop, threads, queues, log_level, metrics=metrics)
    finally:
        _stop_all(children)
        if metrics is not None:
            metrics.close()
        if server is not None:
            embedded.release(server)


def _watch(
    children: list[BaseProcess],
    stop: threading.Event,
    threads: int,
    queues: list[str],
    log_level: str,
    *,
    metrics: WorkerMetrics | None = None,
) -> None:
    while not stop.wait(RESTART_PAUSE_S):
        for index, child in enumerate(children):
            if child.is_alive():
                continue
            log.warning("worker process %s exited with %s; restarting", child.pid, child.exitcode)
            if metrics is not None:
                metrics.stats.restarts += 1
                process_died(metrics.path, child.pid)
            children[index] = _spawn(threads, queues, log_level)
        if metrics is not None:
            metrics.stats.processes = sum(1 for child in children if child.is_alive())


def _stop_all(children: list[BaseProcess]) -> None:
    for child in children:
        if child.is_alive():
            child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_MS / 1000 + 5
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            log.error("worker process %s did not stop in time; killing it", child.pid)
            child.kill()
            child.join(5)
