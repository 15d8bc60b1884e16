"""``qakeapi queue start``: one worker process, or several under a supervisor."""

from __future__ import annotations

import signal
import sys
import time

import anyio
import click

from .._importing import load_app
from ..constants import SAME_STOP_SIGNAL_SECONDS
from ..exceptions import BackendUnavailable, ConfigurationError, QueueError
from ._cli_common import queue_for, settings_for, targeted
from ._settings import QueueSettings
from ._supervisor import Supervisor, WorkersKeepFailing
from .backends import open_storage

__all__ = ["start"]


@click.command()
@targeted
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
    tasks = queue_for(app_path, url)
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
    _connect(settings_for(app_path, url))
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
