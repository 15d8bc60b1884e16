"""The ``qakeapi`` command: ``qakeapi run module:app`` and ``qakeapi queue ...``."""

from __future__ import annotations

import traceback

import click

from .importing import AppImportError, load_app

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
@click.option("--workers", default=1, show_default=True, type=int, help="Server processes.")
@click.option("--log-level", default="info", show_default=True)
def run(app: str, host: str, port: int, reload: bool, workers: int, log_level: str) -> None:
    """Serve APP (``module:app``) with uvicorn."""
    import uvicorn

    try:
        load_app(app)
    except AppImportError as exc:
        raise click.ClickException(str(exc)) from None
    uvicorn.run(app, host=host, port=port, reload=reload, workers=workers if workers > 1 else None,
                log_level=log_level)


try:
    from .queued_tasks.cli import queue as _queue_group

    main.add_command(_queue_group)
except Exception as _exc:  # pragma: no cover - shown to the user by `qakeapi queue`
    _import_error = "".join(traceback.format_exception(_exc))

    @main.command(name="queue", context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def _queue_unavailable(args: tuple[str, ...]) -> None:
        """Queued-task commands (unavailable: see the error)."""
        raise click.ClickException(f"the queue commands could not be loaded:\n{_import_error}")
