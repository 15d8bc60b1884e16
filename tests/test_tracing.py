"""A trace from a request (OpenTelemetry's ASGI middleware) to the worker's span of each
attempt, on every backend, with the SDK's in-memory exporter; hostile stored trace contexts
are ignored with a log line."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from qakeapi import Inject, QakeAPI
from qakeapi.constants import TRACE_CONTEXT_KEY
from qakeapi.exceptions import Retry
from qakeapi.queued_tasks import QueuedTasks
from qakeapi.queued_tasks._serialization import encode_call
from qakeapi.types import TaskRecord, TaskStatus

from ._redis import redis_queue_url

pytestmark = pytest.mark.anyio

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CLIENT_SPAN = 0x00F067AA0BA902B7
EXPORTER = InMemorySpanExporter()
_attempts: dict[int, int] = {}


@pytest.fixture(scope="module", autouse=True)
def tracer_provider() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        pytest.fail("another test set a global tracer provider first")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "redis":
        with redis_queue_url() as url:
            yield url
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/queue.db"
    else:
        yield "memory://"


def ship(order: int) -> int:
    """Fails its first attempt, then runs a span of its own (on a worker thread)."""
    _attempts[order] = _attempts.get(order, 0) + 1
    if _attempts[order] == 1:
        raise Retry(delay=0, reason="carrier busy")
    with trace.get_tracer("shop").start_as_current_span("ship parcel"):
        return order


async def plain(n: int) -> int:
    return n


async def _wait_terminal(tasks: QueuedTasks, task_id: str) -> TaskRecord:
    with anyio.fail_after(20):
        while True:
            record = await tasks.get(task_id)
            if record is not None and record.is_terminal:
                return record
            await anyio.sleep(0.02)


def _named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return sorted((s for s in spans.get_finished_spans() if s.name == name),
                  key=lambda s: s.start_time or 0)


async def test_trace_goes_from_the_request_to_each_attempt(
        any_url: str, spans: InMemorySpanExporter) -> None:
    app = QakeAPI(queue_url=any_url)
    order = len(_attempts) + 1

    @app.post("/orders")
    async def create(tasks: QueuedTasks = Inject(QueuedTasks)) -> dict[str, str]:
        return {"id": tasks.add_task(ship, order, max_retries=2).id}

    traced = OpenTelemetryMiddleware(app)
    traceparent = f"00-{TRACE_ID:032x}-{CLIENT_SPAN:016x}-01"
    async with app.lifespan():
        transport = httpx.ASGITransport(app=traced)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            response = await client.post("/orders", headers={"traceparent": traceparent})
        record = await _wait_terminal(app.queued_tasks, response.json()["id"])
    assert record.status is TaskStatus.SUCCEEDED
    assert record.attempts == 2

    (request_span,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert request_span.context is not None and request_span.context.trace_id == TRACE_ID
    first, second = _named(spans, f"task {record.name}")
    for attempt, span in enumerate((first, second), start=1):
        assert span.kind is SpanKind.CONSUMER
        assert span.context is not None and span.context.trace_id == TRACE_ID
        assert span.parent is not None
        assert span.parent.span_id == request_span.context.span_id
        assert span.attributes is not None
        assert span.attributes["qakeapi.task.id"] == record.id
        assert span.attributes["qakeapi.task.attempt"] == attempt
    assert first.status.status_code is StatusCode.ERROR
    assert first.attributes is not None and first.attributes["qakeapi.task.outcome"] == "retrying"
    assert second.status.status_code is StatusCode.UNSET
    assert second.attributes is not None
    assert second.attributes["qakeapi.task.outcome"] == "succeeded"
    (inner,) = _named(spans, "ship parcel")
    assert inner.parent is not None and second.context is not None
    assert inner.parent.span_id == second.context.span_id


async def test_no_span_no_trace_context(any_url: str, spans: InMemorySpanExporter) -> None:
    async with QueuedTasks(any_url) as tasks:
        ref = await tasks.enqueue(plain, 1, context={"step": 1})
        record = await _wait_terminal(tasks, ref.id)
    assert record.context == {"step": 1}
    (span,) = _named(spans, f"task {record.name}")
    assert span.parent is None


HOSTILE = {
    "text": "00-garbage",
    "number": 12345,
    "list": ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
    "bad traceparent": {"traceparent": "00-zzzz-yyyy-01"},
    "all-zero trace id": {"traceparent": f"00-{0:032x}-{CLIENT_SPAN:016x}-01"},
    "huge traceparent": {"traceparent": "0" * 1_000_000},
    "huge tracestate": {"traceparent": f"00-{TRACE_ID:032x}-{CLIENT_SPAN:016x}-01",
                        "tracestate": "k=" + "v" * 100_000},
}


async def test_hostile_stored_trace_context_is_ignored(
        any_url: str, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture) -> None:
    name = f"{plain.__module__}:{plain.__qualname__}"
    args, kwargs = encode_call(name, (7,), {})
    records = [TaskRecord(id=uuid.uuid4().hex, name=name, args=args, kwargs=kwargs,
                          created_at=time.time(), context={TRACE_CONTEXT_KEY: stored})
               for stored in HOSTILE.values()]
    with caplog.at_level(logging.WARNING, logger="qakeapi.worker"):
        async with QueuedTasks(any_url) as tasks:
            tasks.register(plain)
            await tasks.storage.enqueue(records)
            finished = [await _wait_terminal(tasks, record.id) for record in records]
    assert [record.status for record in finished] == [TaskStatus.SUCCEEDED] * len(HOSTILE)
    attempt_spans = _named(spans, f"task {name}")
    assert len(attempt_spans) == len(HOSTILE)
    assert all(span.parent is None for span in attempt_spans)
    assert all(span.context is not None and span.context.trace_id != TRACE_ID
               for span in attempt_spans)
    ignored = [r for r in caplog.records if "stored trace context is ignored" in r.getMessage()]
    assert sorted(r.args[0] for r in ignored) == sorted(r.id for r in records)  # type: ignore[index]
    assert max(len(r.getMessage()) for r in ignored) < 400
