"""``qakeapi queue dashboard``: the dashboard served on its own by uvicorn."""

from __future__ import annotations

import secrets

import click
import uvicorn

from ..constants import DASHBOARD_POLL_SECONDS
from ..queued_tasks import QueuedTasks
from ._access import Access
from ._app import DashboardApp
from ._data import Source

__all__ = ["serve_dashboard"]


def serve_dashboard(tasks: QueuedTasks, *, host: str, port: int, token: str | None,
                    read_only: bool) -> None:
    """Serve ``tasks``' dashboard until interrupted. Without a token one is made up and
    printed: the dashboard never runs open."""
    if token is None:
        token = secrets.token_urlsafe(24)
        click.echo(f"dashboard token (made up for this run): {token}", err=True)
    tasks.configure(embedded_worker=False)
    app = DashboardApp(Source(tasks, None, None), Access(token), read_only=read_only,
                       poll_interval=DASHBOARD_POLL_SECONDS)
    click.echo(f"dashboard of {tasks.resolve_settings().url} on http://{host}:{port}/"
               f"{' (read-only)' if read_only else ''}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="info", lifespan="on")
