"""OpenTelemetry traces of queued tasks (the ``otel`` extra).

When a task is added, the W3C trace context of the current span is stored in the task's
``context`` under :data:`~qakeapi.constants.TRACE_CONTEXT_KEY` (every backend stores the
context, and requeues keep it); each attempt then runs in a span whose parent is that
context, so a trace goes from the request that added a task to the worker that ran it.

qakeapi never imports opentelemetry itself: tracing is on in a process that imported it (an
app that configures a tracer provider has). Without it, adding or running a task costs one
dictionary lookup; with it but no tracer provider set, one ``get_current_span()`` and one
``get_tracer_provider()``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..constants import TRACE_CONTEXT_KEY, TRACEPARENT_MAX_CHARS, TRACESTATE_MAX_CHARS
from ..types import TaskOutcome, TaskRecord, TaskStatus

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

__all__ = ["attempt_span", "end_attempt_span", "trace_carrier"]

logger = logging.getLogger("qakeapi.worker")

_OTEL = "opentelemetry.trace"
_TRACER_NAME = "qakeapi.queued_tasks"
_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()
_SHOWN_CHARS = 80


class _Provider:
    """The tracer of the global tracer provider, once seen set: it can be set only once, so
    once seen it needs no more checking."""

    tracer: Tracer | None = None


def trace_carrier() -> dict[str, str] | None:
    """The W3C headers (``traceparent``, ``tracestate``) of the current span, if any."""
    trace = sys.modules.get(_OTEL)
    if trace is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier or None


def _refusal(stored: Any) -> str | None:
    if not isinstance(stored, Mapping):
        return "not a mapping"
    parent = stored.get("traceparent")
    if not isinstance(parent, str) or len(parent) > TRACEPARENT_MAX_CHARS:
        return "traceparent is not a W3C traceparent"
    state = stored.get("tracestate")
    if state is not None and (not isinstance(state, str) or len(state) > TRACESTATE_MAX_CHARS):
        return f"tracestate is not text of at most {TRACESTATE_MAX_CHARS} characters"
    return None


def _parent(record: TaskRecord) -> Context:
    """The stored trace context of ``record``; an empty one (a new trace) when it has none or
    it is unusable (with a log line) — never the context the worker happened to start in."""
    from opentelemetry import context, trace

    stored = record.context.get(TRACE_CONTEXT_KEY)
    if stored is None:
        return context.Context()
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    why = _refusal(stored)
    if why is None:
        carrier = {key: stored[key] for key in ("traceparent", "tracestate") if key in stored}
        extracted = TraceContextTextMapPropagator().extract(carrier)
        if trace.get_current_span(extracted).get_span_context().is_valid:
            return extracted
        why = "traceparent is not a W3C traceparent"
    logger.warning("task %s: its stored trace context is ignored (%s): %.*r", record.id, why,
                   _SHOWN_CHARS, stored)
    return context.Context()


def attempt_span(record: TaskRecord, worker_id: str) -> contextlib.AbstractContextManager[
        Span | None]:
    """The span of one attempt of ``record``, current while it runs, child of the span that
    added the task; a context manager of None when opentelemetry is not in use (not imported,
    or no tracer provider set)."""
    trace = sys.modules.get(_OTEL)
    if trace is None:
        return _NO_SPAN
    tracer = _Provider.tracer
    if tracer is None:
        provider = trace.get_tracer_provider()
        if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
            return _NO_SPAN
        tracer = _Provider.tracer = provider.get_tracer(_TRACER_NAME)
    return _span(tracer, record, worker_id)


@contextlib.contextmanager
def _span(tracer: Tracer, record: TaskRecord, worker_id: str) -> Iterator[Span]:
    from opentelemetry import trace

    attributes: dict[str, str | int] = {"qakeapi.task.id": record.id,
                                        "qakeapi.task.name": record.name,
                                        "qakeapi.task.attempt": record.attempts,
                                        "qakeapi.worker.id": worker_id}
    with tracer.start_as_current_span(f"task {record.name}", context=_parent(record),
                                      kind=trace.SpanKind.CONSUMER, attributes=attributes,
                                      record_exception=False,
                                      set_status_on_exception=False) as span:
        yield span


def end_attempt_span(span: Span | None, outcome: TaskOutcome | None) -> None:
    """Say on ``span`` how the attempt ended (pending = it will be retried)."""
    if span is None or not span.is_recording():
        return
    from opentelemetry.trace import Status, StatusCode

    if outcome is None:
        span.set_attribute("qakeapi.task.outcome", "abandoned")
        return
    state = outcome.status
    span.set_attribute("qakeapi.task.outcome",
                       "retrying" if state is TaskStatus.PENDING else state.value)
    error = outcome.error
    if error is not None and state in (TaskStatus.FAILED, TaskStatus.PENDING):
        span.set_attribute("error.type", error.type)
        span.set_status(Status(StatusCode.ERROR, f"{error.type}: {error.message}"))
