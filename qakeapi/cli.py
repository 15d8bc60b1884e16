"""The ``qakeapi`` command: ``qakeapi run module:app`` and ``qakeapi queue ...``."""

from __future__ import annotations

import os
import traceback

import click

from ._importing import AppImportError, load_app
from .constants import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    ENV_BODY_TIMEOUT,
    ENV_HEADER_TIMEOUT,
    ENV_MAX_BODY_SIZE,
    SERVER_BACKLOG,
    SERVER_H11_MAX_INCOMPLETE_EVENT_SIZE,
    SERVER_HEADER_TIMEOUT,
    SERVER_LIMIT_CONCURRENCY,
    SERVER_TIMEOUT_GRACEFUL_SHUTDOWN,
    SERVER_TIMEOUT_KEEP_ALIVE,
)

__all__ = ["main"]


@click.group()
@click.version_option(package_name="qakeapi")
def main() -> None:
    """qakeapi: serve an app, run and inspect queued-task workers."""


@main.command()
@click.argument("app")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--reload", is_flag=True, help="Restart when code changes (development).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Server processes.")
@click.option("--log-level", default="info", show_default=True)
@click.option("--timeout-keep-alive", default=SERVER_TIMEOUT_KEEP_ALIVE, show_default=True,
              type=click.IntRange(min=1),
              help="Seconds an idle keep-alive connection stays open after a response.")
@click.option("--header-timeout", default=SERVER_HEADER_TIMEOUT, show_default=True,
              type=click.FloatRange(min=0),
              help="Seconds a connection may take to send its request headers (0 = none).")
@click.option("--max-body-size", type=click.IntRange(min=0), default=None,
              help=f"Request body limit in bytes, 413 beyond (sets {ENV_MAX_BODY_SIZE}; "
                   f"default {DEFAULT_MAX_BODY_SIZE}; 0 = none).")
@click.option("--body-timeout", type=click.FloatRange(min=0), default=None,
              help=f"Seconds to receive a request body, 408 beyond (sets {ENV_BODY_TIMEOUT}; "
                   f"default {DEFAULT_BODY_TIMEOUT:g}; 0 = none).")
@click.option("--limit-concurrency", default=SERVER_LIMIT_CONCURRENCY, show_default=True,
              type=click.IntRange(min=0),
              help="Connections and requests per process before answering 503 (0 = none).")
@click.option("--limit-max-requests", default=None, type=click.IntRange(min=1),
              help="Restart a worker process after this many requests.")
@click.option("--backlog", default=SERVER_BACKLOG, show_default=True,
              type=click.IntRange(min=1), help="Connections waiting to be accepted.")
@click.option("--h11-max-incomplete-event-size", default=SERVER_H11_MAX_INCOMPLETE_EVENT_SIZE,
              show_default=True, type=click.IntRange(min=1),
              help="Bytes of request line and headers buffered before refusing the request.")
@click.option("--timeout-graceful-shutdown", default=SERVER_TIMEOUT_GRACEFUL_SHUTDOWN,
              show_default=True, type=click.IntRange(min=0),
              help="Seconds a stopping server waits for open connections (0 = for ever).")
def run(app: str, host: str, port: int, reload: bool, workers: int, log_level: str,
        timeout_keep_alive: int, header_timeout: float, max_body_size: int | None,
        body_timeout: float | None, limit_concurrency: int, limit_max_requests: int | None,
        backlog: int, h11_max_incomplete_event_size: int,
        timeout_graceful_shutdown: int) -> None:
    """Serve APP (``module:app``) with uvicorn, with limits against slow or greedy clients."""
    import uvicorn

    from .server import protocol_class

    # The environment carries the app's limits to the app (unless it sets them in code) and
    # to the worker processes uvicorn starts.
    os.environ[ENV_HEADER_TIMEOUT] = repr(header_timeout)
    if max_body_size is not None:
        os.environ[ENV_MAX_BODY_SIZE] = str(max_body_size)
    if body_timeout is not None:
        os.environ[ENV_BODY_TIMEOUT] = repr(body_timeout)
    try:
        load_app(app)
    except AppImportError as exc:
        raise click.ClickException(str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise click.ClickException(f"{app}: {exc}") from None
    uvicorn.run(app, host=host, port=port, reload=reload, workers=workers if workers > 1 else None,
                log_level=log_level, http=protocol_class(),
                timeout_keep_alive=timeout_keep_alive,
                limit_concurrency=limit_concurrency or None,
                limit_max_requests=limit_max_requests, backlog=backlog,
                h11_max_incomplete_event_size=h11_max_incomplete_event_size,
                timeout_graceful_shutdown=timeout_graceful_shutdown or None)


try:
    from .queued_tasks._cli import queue as _queue_group

    main.add_command(_queue_group)
except Exception as _exc:  # pragma: no cover - shown to the user by `qakeapi queue`
    _import_error = "".join(traceback.format_exception(_exc))

    @main.command(name="queue", context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def _queue_unavailable(args: tuple[str, ...]) -> None:
        """Queued-task commands (unavailable: see the error)."""
        raise click.ClickException(f"the queue commands could not be loaded:\n{_import_error}")
