"""``qakeapi queue list|show|logs|retry|cancel|purge|clear|dashboard``: read and change tasks."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable

import click

from ..constants import ENV_DASHBOARD_TOKEN
from ..exceptions import ConfigurationError, TaskNotFound
from ..types import TaskRecord, TaskStatus
from ._cli_common import (
    ago,
    as_json,
    echo_json,
    queue_for,
    require_sqlite_queue,
    settings_for,
    table,
    targeted,
    with_storage,
)
from ._settings import QueueSettings
from .backends import QueueStorage

__all__ = ["TASK_COMMANDS"]


@click.command(name="list")
@targeted
@as_json
@click.option("--status", "status_name", type=click.Choice([s.value for s in TaskStatus]))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
def list_tasks(app_path: str | None, url: str | None, as_json: bool, status_name: str | None,
               limit: int) -> None:
    """The newest tasks."""

    async def read(storage: QueueStorage, _settings: QueueSettings) -> list[TaskRecord]:
        chosen = TaskStatus(status_name) if status_name else None
        return await storage.list(chosen, limit=limit)

    records = with_storage(app_path, url, read)
    if as_json:
        echo_json([r.to_public_dict() for r in records])
        return
    click.echo(table(
        ["id", "name", "status", "attempts", "progress", "created"],
        [[r.id, r.name, r.status.value, r.attempts, r.context.get("progress", ""),
          ago(r.created_at)] for r in records]))


def _one(app_path: str | None, url: str | None, task_id: str) -> TaskRecord:
    async def read(storage: QueueStorage, _settings: QueueSettings) -> TaskRecord:
        record = await storage.get(task_id)
        if record is None:
            raise TaskNotFound(task_id)
        return record

    try:
        return with_storage(app_path, url, read)
    except KeyError:
        raise click.ClickException(f"no task with id {task_id!r}") from None


@click.command()
@targeted
@as_json
@click.argument("task_id")
def show(app_path: str | None, url: str | None, as_json: bool, task_id: str) -> None:
    """A task's record, context, logs and traceback."""
    record = _one(app_path, url, task_id)
    data = record.to_public_dict()
    if as_json:
        echo_json(data)
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


@click.command()
@targeted
@as_json
@click.argument("task_id")
def logs(app_path: str | None, url: str | None, as_json: bool, task_id: str) -> None:
    """The log lines a task wrote through getLogger()."""
    record = _one(app_path, url, task_id)
    if as_json:
        echo_json(list(record.logs))
        return
    for line in record.logs:
        click.echo(line)


def _change(app_path: str | None, url: str | None, as_json: bool,
            change: Callable[[QueueStorage], Awaitable[TaskRecord]], verb: str) -> None:
    async def run(storage: QueueStorage, _settings: QueueSettings) -> TaskRecord:
        return await change(storage)

    try:
        record = with_storage(app_path, url, run)
    except (KeyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        echo_json(record.to_public_dict())
    else:
        click.echo(f"{verb} {record.id}: now {record.status.value}"
                   + (" (cancel requested)" if record.cancel_requested else ""))


@click.command()
@targeted
@as_json
@click.argument("task_id")
def retry(app_path: str | None, url: str | None, as_json: bool, task_id: str) -> None:
    """Run a failed or cancelled task again."""
    _change(app_path, url, as_json, lambda s: s.requeue(task_id), "retried")


@click.command()
@targeted
@as_json
@click.argument("task_id")
def cancel(app_path: str | None, url: str | None, as_json: bool, task_id: str) -> None:
    """Cancel a pending or running task (and its descendants)."""
    _change(app_path, url, as_json, lambda s: s.cancel(task_id, "cancelled from the CLI"),
            "cancelled")


@click.command()
@targeted
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

    count = with_storage(app_path, url, run)
    if as_json:
        echo_json({"purged": count})
    else:
        click.echo(f"purged {count} task(s)")


@click.command()
@targeted
@as_json
@click.option("--yes", is_flag=True, help="Don't ask for confirmation (for scripts).")
def clear(app_path: str | None, url: str | None, as_json: bool, yes: bool) -> None:
    """Delete every pending task, with the children waiting on them."""

    async def count(storage: QueueStorage, settings: QueueSettings) -> tuple[str, int]:
        return settings.url, (await storage.stats()).counts.get(TaskStatus.PENDING, 0)

    async def run(storage: QueueStorage, _settings: QueueSettings) -> int:
        return await storage.delete_pending()

    if not yes:
        where, pending = with_storage(app_path, url, count)
        click.confirm(f"delete {pending} pending task(s) from {where}?", abort=True, err=True)
    deleted = with_storage(app_path, url, run)
    if as_json:
        echo_json({"deleted": deleted})
    else:
        click.echo(f"deleted {deleted} pending task(s)")



@click.command(name="dashboard")
@targeted
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

    settings = settings_for(app_path, url)
    if settings.url.startswith("memory:"):
        raise click.ClickException(
            "the queue is memory:// — mount dashboard(tasks, ...) in the app instead")
    require_sqlite_queue(settings.url)
    try:
        serve_dashboard(queue_for(app_path, url), host=host, port=port, token=token,
                        read_only=read_only)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


TASK_COMMANDS = (list_tasks, show, logs, retry, cancel, purge, clear, dashboard_command)
