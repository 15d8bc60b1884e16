"""Prometheus metrics of the queued tasks and the in-process background tasks:
``app.mount("/metrics", metrics_app(tasks))`` (needs ``pip install 'qakeapi[metrics]'``).

Two sources, chosen so that several worker processes add up correctly:

* **counters and the duration histogram** count attempts as the workers of *this process*
  report them (the queue's hooks). Storage can't give them: counters must never go down,
  and purged or ``auto_remove`` tasks leave no row to count; a histogram needs every
  duration. With worker processes (``qakeapi queue start --workers N``) set
  ``PROMETHEUS_MULTIPROC_DIR`` for every process of the host (prometheus-client's
  multiprocess mode): each writes its counts there and the endpoint adds them up.
* **gauges** — tasks by state, the oldest pending task's age, live workers — are read from
  storage at scrape time, so every process, on every host, reports the same figures.

The background manager's pending/running tasks are this process's own.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from .constants import TASK_DURATION_BUCKETS
from .core.background import BackgroundTaskManager
from .types import TaskRecord, TaskStatus

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from .queued_tasks import QueuedTasks

__all__ = ["MULTIPROCESS_DIR_ENV", "TaskMetrics", "metrics_app", "render_metrics", "task_metrics"]

logger = logging.getLogger("qakeapi.metrics")

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's multiprocess mode: where every process writes its counters."""
_INSTALL_HINT = "Prometheus metrics need prometheus-client: pip install 'qakeapi[metrics]'"
_MANAGER_STATES = (TaskStatus.PENDING, TaskStatus.RUNNING)


def _require_prometheus() -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise ImportError(_INSTALL_HINT) from None


class TaskMetrics:
    """The counters and histogram of task attempts, fed by a queue's hooks: one per process
    (:func:`task_metrics`), so that multiprocess mode writes each series once."""

    def __init__(self) -> None:
        _require_prometheus()
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.attempts = Counter(
            "qakeapi_task_attempts", "Attempts of queued tasks started, by task name",
            ["name"], registry=self.registry)
        self.finished = Counter(
            "qakeapi_tasks_finished", "Queued tasks that ended, by task name and final state",
            ["name", "state"], registry=self.registry)
        self.retries = Counter(
            "qakeapi_task_retries",
            "Attempts that ended back in pending (to be retried, or given back at shutdown)",
            ["name"], registry=self.registry)
        self.duration = Histogram(
            "qakeapi_task_duration_seconds",
            "Seconds an attempt took, from its start to its stored outcome",
            ["name", "outcome"], buckets=TASK_DURATION_BUCKETS, registry=self.registry)

    async def on_started(self, record: TaskRecord) -> None:
        self.attempts.labels(record.name).inc()

    async def on_finished(self, record: TaskRecord) -> None:
        if record.is_terminal:
            outcome = record.status.value
            self.finished.labels(record.name, outcome).inc()
        else:
            outcome = "retrying"
            self.retries.labels(record.name).inc()
        if record.started_at is not None and record.attempts:
            ended = record.finished_at if record.finished_at is not None else time.time()
            self.duration.labels(record.name, outcome).observe(max(0.0, ended - record.started_at))


_process_metrics: TaskMetrics | None = None


def task_metrics() -> TaskMetrics:
    """This process's :class:`TaskMetrics`."""
    global _process_metrics
    if _process_metrics is None:
        _process_metrics = TaskMetrics()
    return _process_metrics


class _Families:
    """A collector that yields metric families computed before the scrape."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def _queue_families(tasks: QueuedTasks) -> list[Metric]:
    from prometheus_client.core import GaugeMetricFamily

    up = GaugeMetricFamily("qakeapi_queue_up", "1 when the queue's storage answered this scrape")
    try:
        stats = await tasks.stats()
        workers = await tasks.workers()
    except Exception as exc:
        logger.warning("metrics: reading the queue's storage failed: %r", exc)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    now = time.time()
    depth = GaugeMetricFamily("qakeapi_queue_tasks", "Queued tasks stored, by state",
                              labels=["state"])
    for status in TaskStatus:
        depth.add_metric([status.value], stats.counts.get(status, 0))
    oldest = stats.oldest_pending_at
    age = GaugeMetricFamily(
        "qakeapi_queue_oldest_pending_age_seconds",
        "Age of the oldest due pending task (0 when none is waiting)",
        value=0.0 if oldest is None else max(0.0, now - oldest))
    stale = tasks.settings.worker_stale_seconds
    live = [w for w in workers if now - w.last_heartbeat <= stale]
    alive = GaugeMetricFamily("qakeapi_workers_alive", "Workers with a recent heartbeat",
                              value=len(live))
    slots = GaugeMetricFamily("qakeapi_worker_slots",
                              "Tasks the live workers can run at once, and run now",
                              labels=["use"])
    slots.add_metric(["capacity"], sum(w.concurrency for w in live))
    slots.add_metric(["running"], sum(w.running for w in live))
    return [up, depth, age, alive, slots]


def _manager_family(manager: BackgroundTaskManager) -> Metric:
    from prometheus_client.core import GaugeMetricFamily

    counts = manager.counts()
    family = GaugeMetricFamily("qakeapi_background_tasks",
                               "This process's in-process background tasks, by state",
                               labels=["state"])
    for status in _MANAGER_STATES:
        family.add_metric([status.value], counts.get(status, 0))
    return family


def _counters_text(own: CollectorRegistry) -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    if not os.environ.get(MULTIPROCESS_DIR_ENV):
        return generate_latest(own)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


async def render_metrics(tasks: QueuedTasks | None,
                         manager: BackgroundTaskManager | None = None) -> bytes:
    """The exposition text: counters (this process's, or every process's in multiprocess
    mode), the queue's gauges read from storage now, the manager's pending/running."""
    from prometheus_client import CollectorRegistry, generate_latest

    families = [_manager_family(manager or BackgroundTaskManager())]
    if tasks is not None:
        families += await _queue_families(tasks)
    gauges = CollectorRegistry(auto_describe=False)
    gauges.register(_Families(families))
    own = task_metrics().registry
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        counters = await anyio.to_thread.run_sync(_counters_text, own)
    else:
        counters = _counters_text(own)
    return counters + generate_latest(gauges)


class MetricsApp:
    """The ASGI endpoint: ``GET`` answers the exposition text."""

    def __init__(self, tasks: QueuedTasks | None, manager: BackgroundTaskManager | None) -> None:
        self.tasks = tasks
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _acknowledge_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        response: Response
        if scope["method"] not in ("GET", "HEAD"):
            response = PlainTextResponse("method not allowed", 405, headers={"Allow": "GET"})
        else:
            from prometheus_client import CONTENT_TYPE_LATEST

            body = await render_metrics(self.tasks, self.manager)
            response = Response(body, media_type=CONTENT_TYPE_LATEST)
        await response(scope, receive, send)


async def _acknowledge_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message: dict[str, Any] = dict(await receive())
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def metrics_app(tasks: QueuedTasks | None = None, *,
                manager: BackgroundTaskManager | None = None) -> MetricsApp:
    """The Prometheus endpoint of ``tasks`` (and of ``manager``, by default the process's
    background task manager), to mount: ``app.mount("/metrics", metrics_app(tasks))``.

    Creating it makes this process count the attempts its workers run for ``tasks``; call
    it where worker processes run it too (the module that defines the app)."""
    _require_prometheus()
    if tasks is not None:
        tasks.hooks.observe(task_metrics())
    return MetricsApp(tasks, manager)
