"""A live dashboard of queued and in-process background tasks, as an ASGI app.

``app.mount("/tasks", dashboard(tasks, auth="a-long-token"))`` in a qakeapi, FastAPI or
Starlette app; ``qakeapi queue dashboard --url ...`` serves one on its own.
"""

from __future__ import annotations

from ..constants import DASHBOARD_POLL_SECONDS
from ..core._options import check_seconds
from ..core.background import BackgroundTaskManager
from ..exceptions import ConfigurationError
from ..queued_tasks import QueuedTasks
from ._access import Access, AuthCheck
from ._app import DashboardApp
from ._data import Mask, Source
from ._standalone import serve_dashboard

__all__ = ["AuthCheck", "DashboardApp", "Mask", "dashboard", "serve_dashboard"]

MIN_POLL_SECONDS = 0.1


def dashboard(
    tasks: QueuedTasks,
    *,
    auth: str | AuthCheck,
    read_only: bool = False,
    mask: Mask | None = None,
    background: BackgroundTaskManager | bool = True,
    poll_interval: float = DASHBOARD_POLL_SECONDS,
) -> DashboardApp:
    """The dashboard of ``tasks`` as an ASGI app.

    ``auth`` is required: a token string (sent as ``X-Dashboard-Token``, ``Authorization:
    Bearer`` or entered once in the sign-in form, which sets a cookie) or a callable taking
    the Starlette request and returning True (or an awaitable of True) to let it in.
    ``read_only`` hides and refuses cancel, retry and purge. ``mask`` maps every record
    before it is shown (hide secrets in arguments, results, context or logs).
    ``background`` shows this process's in-process background tasks too (True: the
    process's manager; False: not). ``poll_interval`` is how often, while a live page is
    open, the dashboard reads storage (once for all open pages).
    """
    if not isinstance(tasks, QueuedTasks):
        raise ConfigurationError(
            f"dashboard() needs a QueuedTasks; got {type(tasks).__name__}")
    if mask is not None and not callable(mask):
        raise ConfigurationError("dashboard(mask=...) must be a callable taking a TaskRecord")
    if check_seconds("poll_interval", poll_interval) < MIN_POLL_SECONDS:
        raise ValueError(f"poll_interval must be at least {MIN_POLL_SECONDS} s, "
                         f"got {poll_interval!r}")
    manager = BackgroundTaskManager() if background is True else background or None
    return DashboardApp(Source(tasks, mask, manager), Access(auth), read_only=read_only,
                        poll_interval=poll_interval)
