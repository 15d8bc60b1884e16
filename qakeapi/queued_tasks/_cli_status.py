"""``qakeapi queue status [--watch]``: counts by state, live workers, the oldest pending age."""

from __future__ import annotations

import functools
import json
import sys
import time
from typing import Any

import anyio
import click

from ..constants import WATCH_DEFAULT_SECONDS, WATCH_MIN_SECONDS
from ._cli_common import ago, as_json, echo_json, table, targeted, with_storage
from ._settings import QueueSettings
from .backends import QueueStorage

__all__ = ["status"]


async def _status_data(storage: QueueStorage, settings: QueueSettings) -> dict[str, Any]:
    stats = await storage.stats()
    live = [w for w in await storage.list_workers()
            if time.time() - w.last_heartbeat <= settings.worker_stale_seconds]
    return {"url": settings.url, **stats.to_dict(), "workers": [w.to_dict() for w in live]}


def _status_text(data: dict[str, Any], previous: dict[str, Any] | None = None) -> str:
    """The status tables; with ``previous`` (the last refresh), each count's change."""
    counts: dict[str, int] = data["counts"]
    if previous is None:
        by_state = table(["status", "tasks"], [[s, n] for s, n in counts.items()])
    else:
        before: dict[str, int] = previous["counts"]
        by_state = table(["status", "tasks", "change"],
                          [[s, n, f"{n - before.get(s, 0):+d}"] for s, n in counts.items()])
    oldest = data["oldest_pending_at"]
    lines = [f"queue: {data['url']}", by_state,
             f"oldest pending task: {'none' if oldest is None else ago(oldest)}",
             f"live workers: {len(data['workers'])}"]
    if data["workers"]:
        lines.append(table(
            ["worker", "pid", "concurrency", "running", "last heartbeat"],
            [[w["id"], w["pid"], w["concurrency"], w["running"], ago(w["last_heartbeat"])]
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


@click.command()
@targeted
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
            with_storage(app_path, url, functools.partial(_watch, interval=interval,
                                                           as_json=as_json))
        except KeyboardInterrupt:
            click.echo("", err=True)
        return
    data = with_storage(app_path, url, _status_data)
    if as_json:
        echo_json(data)
        return
    click.echo(_status_text(data))
