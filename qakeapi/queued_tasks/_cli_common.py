"""What every ``qakeapi queue`` command shares: finding the queue (``--app`` / ``--url``),
opening its storage for one action, and printing tables, ages and JSON."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import anyio
import click

from .._importing import AppImportError, load_app
from ..exceptions import ConfigurationError, QueueError
from ._queue import QueuedTasks
from ._settings import QueueSettings
from .backends import QueueStorage, open_storage
from .backends._sqlite import path_from_url

__all__ = ["ago", "as_json", "echo_json", "queue_for", "require_sqlite_queue", "settings_for",
           "table", "targeted", "with_storage"]

T = TypeVar("T")


def queue_for(app_path: str | None, url: str | None) -> QueuedTasks:
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


def settings_for(app_path: str | None, url: str | None) -> QueueSettings:
    try:
        return queue_for(app_path, url).resolve_settings()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


def with_storage(app_path: str | None, url: str | None,
                  action: Callable[[QueueStorage, QueueSettings], Awaitable[T]]) -> T:
    settings = settings_for(app_path, url)
    if settings.url.startswith("memory:"):
        raise click.ClickException(
            "the queue is memory:// — it lives inside the app's process and can't be seen "
            "from here; set QUEUE_URL=sqlite:///queue.db (or redis://...) to share it")
    require_sqlite_queue(settings.url)

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


def require_sqlite_queue(url: str) -> None:
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


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ago(ts: float | None) -> str:
    if ts is None:
        return "-"
    seconds = max(0.0, time.time() - ts)
    if seconds < 120:
        return f"{seconds:.1f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


target = [
    click.option("--app", "app_path", metavar="MODULE:APP", help="The app whose queue to use."),
    click.option("--url", help="Queue URL (overrides the app's and QUEUE_URL)."),
]
as_json = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def targeted(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(target):
        fn = option(fn)
    return fn
