"""``qakeapi queue ...``: run workers and look at the queue.

Every command finds the queue from ``--app module:app`` (the app's queue settings) or
``--url`` (else ``QUEUE_URL``). Tables are for people; ``--json`` prints data for scripts.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import anyio
import click

from .._importing import AppImportError, load_app
from ..constants import (
    ENV_DASHBOARD_TOKEN,
    SAME_STOP_SIGNAL_SECONDS,
    WATCH_DEFAULT_SECONDS,
    WATCH_MIN_SECONDS,
)
from ..exceptions import BackendUnavailable, ConfigurationError, QueueError, TaskNotFound
from ..types import TaskRecord, TaskStatus
from ._queue import QueuedTasks
from ._settings import QueueSettings
from ._supervisor import Supervisor, WorkersKeepFailing
from .backends import QueueStorage, open_storage
from .backends._sqlite import path_from_url

__all__ = ["queue"]

T = TypeVar("T")


def _queue_for(app_path: str | None, url: str | None) -> QueuedTasks:
    if app_path:
        try:
            app = load_app(app_path)
        except AppImportError as exc:
            raise click.ClickException(str(exc)) from None
        tasks = getattr(app, "queued_tasks", None)
        if not isinstance(tasks, QueuedTasks):
            raise click.ClickException(f"{app_path} is not a qakeapi app (no queued_tasks)")
        tasks.configure(url=url)
        return tasks
    return QueuedTasks(url)


def _settings(app_path: str | None, url: str | None) -> QueueSettings:
    try:
        return _queue_for(app_path, url).resolve_settings()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


def _with_storage(app_path: str | None, url: str | None,
                  action: Callable[[QueueStorage, QueueSettings], Awaitable[T]]) -> T:
    settings = _settings(app_path, url)
    if settings.url.startswith("memory:"):
        raise click.ClickException(
            "the queue is memory:// — it lives inside the app's process and can't be seen "
            "from here; set QUEUE_URL=sqlite:///queue.db (or redis://...) to share it")
    _require_sqlite_queue(settings.url)

    async def run() -> T:
        storage = open_storage(settings.url)
        await storage.connect()
        try:
            return await action(storage, settings)
        finally:
            await storage.close()

    try:
        return anyio.run(run)
    except (QueueError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def _require_sqlite_queue(url: str) -> None:
    """Looking at a SQLite queue never creates one: the file must exist and be a queue."""
    if urlsplit(url).scheme.lower() != "sqlite":
        return
    path = path_from_url(url)
    if not os.path.exists(path):
        raise click.ClickException(
            f"there is no SQLite queue at {url}: {path} does not exist (workers and the app "
            f"create it)")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)) as db:
            found = db.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'tasks'"
            ).fetchone()[0]
    except sqlite3.Error as exc:
        raise click.ClickException(f"can't read the SQLite queue {path}: {exc}") from None
    if not found:
        raise click.ClickException(
            f"{path} is not a SQLite queue (it has no tasks table): check --url / QUEUE_URL")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _ago(ts: float | None) -> str:
    if ts is None:
        return "-"
    seconds = max(0.0, time.time() - ts)
    if seconds < 120:
        return f"{seconds:.1f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


target = [
    click.option("--app", "app_path", metavar="MODULE:APP", help="The app whose queue to use."),
    click.option("--url", help="Queue URL (overrides the app's and QUEUE_URL)."),
]
as_json = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _targeted(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(target):
        fn = option(fn)
    return fn


@click.group()
def queue() -> None:
    """Run queued-task workers and inspect the queue."""


@queue.command()
@_targeted
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes to run.")
@click.option("--concurrency", type=click.IntRange(min=1),
              help="Tasks each process runs at once (default QUEUE_MAX_WORKERS).")
def start(app_path: str | None, url: str | None, workers: int, concurrency: int | None) -> None:
    """Run worker processes until SIGINT/SIGTERM (then drain gracefully)."""
    if not app_path:
        raise click.ClickException("--app module:app is required to start workers")
    if workers > 1:
        sys.exit(_supervise(app_path, url, workers, concurrency))
    try:
        anyio.run(_run_worker, app_path, url, concurrency)
    except (BackendUnavailable, ConfigurationError) as exc:
        raise click.ClickException(str(exc)) from None


async def _run_worker(app_path: str, url: str | None, concurrency: int | None) -> None:
    tasks = _queue_for(app_path, url)
    tasks.configure(embedded_worker=False)
    app = load_app(app_path)
    async with app.lifespan():
        await tasks.start()
        worker = tasks.worker(concurrency=concurrency)
        async with anyio.create_task_group() as tg:

            async def run(*, task_status: anyio.abc.TaskStatus[None]) -> None:
                await worker.run(task_status=task_status)
                tg.cancel_scope.cancel()

            async def on_signals() -> None:
                first: float | None = None
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        now = time.monotonic()
                        if first is None:
                            first = now
                            click.echo(f"worker {worker.id}: stopping (again to force)",
                                       err=True)
                            worker.stop()
                        elif now - first >= SAME_STOP_SIGNAL_SECONDS:
                            tg.cancel_scope.cancel()
                            return

            tg.start_soon(on_signals)
            await tg.start(run)
            click.echo(f"worker {worker.id}: {tasks.settings.url}, concurrency "
                       f"{worker.concurrency}", err=True)


def _supervise(app_path: str, url: str | None, workers: int, concurrency: int | None) -> int:
    _connect(_settings(app_path, url))
    command = [sys.executable, "-m", "qakeapi", "queue", "start", "--app", app_path]
    if url:
        command += ["--url", url]
    if concurrency:
        command += ["--concurrency", str(concurrency)]
    try:
        return Supervisor(command, workers).run()
    except WorkersKeepFailing as exc:
        raise click.ClickException(str(exc)) from None


def _connect(settings: QueueSettings) -> None:
    """Fail now, with one line, if the workers could not use the queue."""

    async def check() -> None:
        storage = open_storage(settings.url)
        try:
            await storage.connect()
        finally:
            await storage.close()

    try:
        anyio.run(check)
    except QueueError as exc:
        raise click.ClickException(str(exc)) from None


async def _status_data(storage: QueueStorage, settings: QueueSettings) -> dict[str, Any]:
    stats = await storage.stats()
    live = [w for w in await storage.list_workers()
            if time.time() - w.last_heartbeat <= settings.worker_stale_seconds]
    return {"url": settings.url, **stats.to_dict(), "workers": [w.to_dict() for w in live]}


def _status_text(data: dict[str, Any], previous: dict[str, Any] | None = None) -> str:
    """The status tables; with ``previous`` (the last refresh), each count's change."""
    counts: dict[str, int] = data["counts"]
    if previous is None:
        by_state = _table(["status", "tasks"], [[s, n] for s, n in counts.items()])
    else:
        before: dict[str, int] = previous["counts"]
        by_state = _table(["status", "tasks", "change"],
                          [[s, n, f"{n - before.get(s, 0):+d}"] for s, n in counts.items()])
    oldest = data["oldest_pending_at"]
    lines = [f"queue: {data['url']}", by_state,
             f"oldest pending task: {'none' if oldest is None else _ago(oldest)}",
             f"live workers: {len(data['workers'])}"]
    if data["workers"]:
        lines.append(_table(
            ["worker", "pid", "concurrency", "running", "last heartbeat"],
            [[w["id"], w["pid"], w["concurrency"], w["running"], _ago(w["last_heartbeat"])]
             for w in data["workers"]]))
    return "\n".join(lines)


async def _watch(storage: QueueStorage, settings: QueueSettings, *, interval: float,
                 as_json: bool) -> None:
    """Print the status every ``interval`` seconds until interrupted; a failed read is shown
    and retried at the next refresh."""
    clear = not as_json and sys.stdout.isatty()
    previous: dict[str, Any] | None = None
    while True:
        try:
            data = await _status_data(storage, settings)
        except Exception as exc:
            click.echo(f"{time.strftime('%H:%M:%S')} reading the queue failed: {exc!r}", err=True)
        else:
            if as_json:
                click.echo(json.dumps({"time": time.time(), **data}, sort_keys=True))
            else:
                header = (f"{time.strftime('%H:%M:%S')} - every {interval:g} s, "
                          f"Ctrl-C to stop")
                frame = f"{header}\n{_status_text(data, previous)}"
                click.echo(f"\x1b[H\x1b[2J{frame}" if clear else f"{frame}\n")
            previous = data
        await anyio.sleep(interval)


@queue.command()
@_targeted
@as_json
@click.option("--watch", is_flag=True,
              help="Refresh until Ctrl-C (--json: one JSON object per line).")
@click.option("--interval", default=WATCH_DEFAULT_SECONDS, show_default=True,
              type=click.FloatRange(min=WATCH_MIN_SECONDS),
              help="Seconds between refreshes with --watch.")
def status(app_path: str | None, url: str | None, as_json: bool, watch: bool,
           interval: float) -> None:
    """Counts by state, live workers and the oldest pending task's age (--watch: live)."""
    if watch:
        try:
            _with_storage(app_path, url, functools.partial(_watch, interval=interval,
                                                           as_json=as_json))
        except KeyboardInterrupt:
            click.echo("", err=True)
        return
    data = _with_storage(app_path, url, _status_data)
    if as_json:
        _echo_json(data)
        return
    click.echo(_status_text(data))


@queue.command(name="list")
@_targeted
@as_json
@click.option("--status", "status_name", type=click.Choice([s.value for s in TaskStatus]))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
def list_tasks(app_path: str | None, url: str | None, as_json: bool, status_name: str | None,
               limit: int) -> None:
    """The newest tasks."""

    async def read(storage: QueueStorage, _settings: QueueSettings) -> list[TaskRecord]:
        chosen = TaskStatus(status_name) if status_name else None
        return await storage.list(chosen, limit=limit)

    records = _with_storage(app_path, url, read)
    if as_json:
        _echo_json([r.to_public_dict() for r in records])
        return
    click.echo(_table(
        ["id", "name", "status", "attempts", "progress", "created"],
        [[r.id, r.name, r.status.value, r.attempts, r.context.get("progress", ""),
          _ago(r.created_at)] for r in records]))


def _one(app_path: str | None, url: str | None, task_id: str) -> TaskRecord:
    async def read(storage: QueueStorage, _settings: QueueSettings) -> TaskRecord:
        record = await storage.get(task_id)
        if record is None:
            raise TaskNotFound(task_id)
        return record

    try:
        return _with_storage(app_path, url, read)
    except KeyError:
        raise click.ClickException(f"no task with id {task_id!r}") from None


@queue.command()
@_targeted
@as_json
@click.argument("task_id")
def show(app_path: str | None, url: str | None, as_json: bool, task_id: str) -> None:
    """A task's record, context, logs and traceback."""
    record = _one(app_path, url, task_id)
    data = record.to_public_dict()
    if as_json:
        _echo_json(data)
        return
    for key in ("id", "name", "status", "attempts", "max_retries", "priority", "timeout",
                "parents", "created_at", "started_at", "finished_at", "run_at", "worker_id",
                "cancel_reason", "args", "kwargs", "result"):
        click.echo(f"{key + ':':15} {json.dumps(data[key], default=str)}")
    click.echo("context:")
    click.echo("  " + json.dumps(record.context, indent=2, default=str).replace("\n", "\n  "))
    click.echo(f"logs ({len(record.logs)} lines):")
    for line in record.logs:
        click.echo(f"  {line}")
    if record.error is not None:
        click.echo(f"error: {record.error.type}: {record.error.message}"
                   + (" (timed out)" if record.error.timed_out else ""))
        if record.error.traceback:
            click.echo(record.error.traceback.rstrip())


@queue.command()
@_targeted
@as_json
@click.argument("task_id")
def logs(app_path: str | None, url: str | None, as_json: bool, task_id: str) -> None:
    """The log lines a task wrote through getLogger()."""
    record = _one(app_path, url, task_id)
    if as_json:
        _echo_json(list(record.logs))
        return
    for line in record.logs:
        click.echo(line)


def _change(app_path: str | None, url: str | None, as_json: bool,
            change: Callable[[QueueStorage], Awaitable[TaskRecord]], verb: str) -> None:
    async def run(storage: QueueStorage, _settings: QueueSettings) -> TaskRecord:
        return await change(storage)

    try:
        record = _with_storage(app_path, url, run)
    except (KeyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        _echo_json(record.to_public_dict())
    else:
        click.echo(f"{verb} {record.id}: now {record.status.value}"
                   + (" (cancel requested)" if record.cancel_requested else ""))


@queue.command()
@_targeted
@as_json
@click.argument("task_id")
def retry(app_path: str | None, url: str | None, as_json: bool, task_id: str) -> None:
    """Run a failed or cancelled task again."""
    _change(app_path, url, as_json, lambda s: s.requeue(task_id), "retried")


@queue.command()
@_targeted
@as_json
@click.argument("task_id")
def cancel(app_path: str | None, url: str | None, as_json: bool, task_id: str) -> None:
    """Cancel a pending or running task (and its descendants)."""
    _change(app_path, url, as_json, lambda s: s.cancel(task_id, "cancelled from the CLI"),
            "cancelled")


@queue.command()
@_targeted
@as_json
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(["succeeded", "failed", "cancelled"]),
              help="Which finished tasks (default: all three).")
@click.option("--older-than", type=float, metavar="SECONDS",
              help="Only tasks finished more than SECONDS ago.")
def purge(app_path: str | None, url: str | None, as_json: bool, statuses: tuple[str, ...],
          older_than: float | None) -> None:
    """Delete finished tasks."""
    chosen = [TaskStatus(s) for s in statuses] or [
        TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED]
    before = time.time() - older_than if older_than is not None else None

    async def run(storage: QueueStorage, _settings: QueueSettings) -> int:
        return await storage.purge(chosen, finished_before=before)

    count = _with_storage(app_path, url, run)
    if as_json:
        _echo_json({"purged": count})
    else:
        click.echo(f"purged {count} task(s)")


@queue.command()
@_targeted
@as_json
@click.option("--yes", is_flag=True, help="Don't ask for confirmation (for scripts).")
def clear(app_path: str | None, url: str | None, as_json: bool, yes: bool) -> None:
    """Delete every pending task, with the children waiting on them."""

    async def count(storage: QueueStorage, settings: QueueSettings) -> tuple[str, int]:
        return settings.url, (await storage.stats()).counts.get(TaskStatus.PENDING, 0)

    async def run(storage: QueueStorage, _settings: QueueSettings) -> int:
        return await storage.delete_pending()

    if not yes:
        where, pending = _with_storage(app_path, url, count)
        click.confirm(f"delete {pending} pending task(s) from {where}?", abort=True, err=True)
    deleted = _with_storage(app_path, url, run)
    if as_json:
        _echo_json({"deleted": deleted})
    else:
        click.echo(f"deleted {deleted} pending task(s)")


@queue.command(name="dashboard")
@_targeted
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (only this machine by default).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--token", envvar=ENV_DASHBOARD_TOKEN, show_envvar=True,
              help="The access token (made up and printed when not given).")
@click.option("--read-only", is_flag=True, help="Hide and refuse cancel, retry and purge.")
def dashboard_command(app_path: str | None, url: str | None, host: str, port: int,
                      token: str | None, read_only: bool) -> None:
    """Serve the web dashboard of the queue."""
    from ..dashboard import serve_dashboard

    settings = _settings(app_path, url)
    if settings.url.startswith("memory:"):
        raise click.ClickException(
            "the queue is memory:// — mount dashboard(tasks, ...) in the app instead")
    _require_sqlite_queue(settings.url)
    try:
        serve_dashboard(_queue_for(app_path, url), host=host, port=port, token=token,
                        read_only=read_only)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
