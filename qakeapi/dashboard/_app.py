"""The dashboard's Starlette app: routes, the access guard and the actions."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..constants import DASHBOARD_COOKIE, DASHBOARD_CSRF_COOKIE, DASHBOARD_NAME_MAX_CHARS
from ..exceptions import InvalidCursor, QueueError, TaskNotFound
from ..types import TERMINAL_STATUSES, TaskStatus
from ._access import Access
from ._data import Source
from ._live import LiveFeed, event_stream, overview_payload, task_payload
from ._markup import esc, layout
from ._views import Page, confirm_page, list_page, login_page, overview_page, task_page

__all__ = ["DashboardApp"]

logger = logging.getLogger("qakeapi.dashboard")
STATIC = Path(__file__).resolve().parent / "static"
FORM_LIMIT = 4096
OPEN_PATHS = ("/static/", "/login")
Handler = Callable[[Request], Awaitable[Response]]


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            break
    if len(body) > FORM_LIMIT:
        return {}
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=8)
    return {k: v[0] for k, v in fields.items()}


class DashboardApp:
    """An ASGI app; ``dashboard(...)`` builds one."""

    def __init__(self, source: Source, access: Access, *, read_only: bool,
                 poll_interval: float) -> None:
        self.source = source
        self.access = access
        self.read_only = read_only
        self.feed = LiveFeed(source, poll_interval)
        action = self._action
        self._app = Starlette(lifespan=self._lifespan, routes=[
            Route("/", self._page(self._overview)),
            Route("/tasks", self._page(self._tasks)),
            Route("/search", self._search, methods=["POST"]),
            Route("/task/{task_id}", self._page(self._task)),
            Route("/background/{task_id}", self._page(self._background)),
            Route("/task/{task_id}/{verb:str}", action, methods=["GET", "POST"]),
            Route("/purge", action, methods=["GET", "POST"]),
            Route("/live", self._live),
            Route("/live/task/{task_id}", self._live),
            Route("/login", self._login, methods=["GET", "POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ])

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        """Served on its own, the dashboard runs its queue's lifespan (mounted, the host's
        lifespan does: Starlette does not pass lifespan events to mounted apps)."""
        tasks = self.source.tasks
        if tasks.running:
            yield
            return
        async with tasks.lifespan():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            local = request.url.path[len(_root(request)):]
            if not local.startswith(OPEN_PATHS) and not await self.access.allows(request):
                await self._refuse(request)(scope, receive, send)
                return
        elif scope["type"] != "lifespan":
            return
        await self._app(scope, receive, send)

    def _refuse(self, request: Request) -> ASGIApp:
        if not self.access.uses_login:
            return PlainTextResponse("forbidden", status_code=403)
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(self._render(request, "Sign in", login_page(
                _root(request), False), ""), status_code=401)
        return PlainTextResponse("a dashboard token is required", status_code=401,
                                 headers={"WWW-Authenticate": "Bearer"})

    # -- rendering ------------------------------------------------------------------
    def _render(self, request: Request, title: str, body: str, current: str,
                live: str | None = None) -> str:
        return layout(root=_root(request), title=title, body=body, current=current, live=live,
                      read_only=self.read_only)

    def _page(self, build: Callable[[Request, Page], Awaitable[Response]]) -> Handler:
        async def handler(request: Request) -> Response:
            token, fresh = self.access.csrf_token(request)
            try:
                response = await build(request, Page(_root(request), token, self.read_only))
            except QueueError as exc:
                logger.warning("the dashboard could not read the queue: %s", exc)
                response = self._problem(request, 503, str(exc))
            if fresh is not None:
                self.access.set_cookie(response, DASHBOARD_CSRF_COOKIE, fresh,
                                       _root(request) or "/")
            response.headers["Cache-Control"] = "no-store"
            response.headers["Referrer-Policy"] = "same-origin"
            return response
        return handler

    def _html(self, request: Request, title: str, body: str, current: str,
              live: str | None = None, status_code: int = 200) -> HTMLResponse:
        return HTMLResponse(self._render(request, title, body, current, live),
                            status_code=status_code)

    def _problem(self, request: Request, status_code: int, text: str) -> HTMLResponse:
        body = f'<section class="card confirm"><h1>{status_code}</h1><p>{esc(text)}</p></section>'
        return self._html(request, str(status_code), body, "", status_code=status_code)

    # -- pages ----------------------------------------------------------------------
    async def _overview(self, request: Request, page: Page) -> Response:
        body = overview_page(page, await self.source.overview())
        return self._html(request, "Overview", body, "/", f"{page.root}/live")

    async def _tasks(self, request: Request, page: Page) -> Response:
        params = request.query_params
        status_text, name = params.get("status") or None, params.get("name") or None
        cursor = params.get("cursor") or None
        if status_text is not None and status_text not in {s.value for s in TaskStatus}:
            return self._problem(request, 400, f"unknown state {status_text!r}")
        if name is not None and len(name) > DASHBOARD_NAME_MAX_CHARS:
            return self._problem(request, 400, f"a task name is at most "
                                               f"{DASHBOARD_NAME_MAX_CHARS} characters")
        status = TaskStatus(status_text) if status_text else None
        try:
            data = await self.source.page(status, name, cursor)
        except InvalidCursor as exc:
            return self._problem(request, 400, str(exc))
        return self._html(request, "Tasks", list_page(page, status, name, data),
                          "/tasks")

    async def _task(self, request: Request, page: Page) -> Response:
        task_id = request.path_params["task_id"]
        record = await self.source.record(task_id)
        if record is None:
            return self._problem(request, 404, "No task has this id.")
        live = None if record.is_terminal else f"{page.root}/live/task/{task_id}"
        body = task_page(page, record, graph=await self.source.graph(record))
        return self._html(request, record.name, body, "/tasks", live)

    async def _background(self, request: Request, page: Page) -> Response:
        record = self.source.background_record(request.path_params["task_id"])
        if record is None:
            return self._problem(request, 404, "No background task has this id here.")
        return self._html(request, record.name, task_page(page, record, background=True), "/")

    async def _search(self, request: Request) -> Response:
        form = await _form(request)
        if not self.access.csrf_ok(request, form.get("csrf", "")):
            return PlainTextResponse("the form is stale: reload the page", status_code=403)
        task_id = form.get("id", "").strip()
        if not task_id or len(task_id) > 256:
            return RedirectResponse(f"{_root(request)}/tasks", status_code=303)
        return RedirectResponse(f"{_root(request)}/task/{quote(task_id, safe='')}",
                                status_code=303)

    # -- actions --------------------------------------------------------------------
    async def _action(self, request: Request) -> Response:
        task_id = request.path_params.get("task_id")
        verb = request.path_params.get("verb", "purge")
        if verb not in ("cancel", "retry", "purge"):
            return self._problem(request, 404, "No such page.")
        if self.read_only:
            return self._problem(request, 403, "This dashboard is read-only.")
        root = _root(request)
        back = f"{root}/task/{task_id}" if task_id else f"{root}/tasks"
        if request.method == "GET":
            return await self._page(lambda req, page: self._confirm(req, page, verb, back))(
                request)
        form = await _form(request)
        if not self.access.csrf_ok(request, form.get("csrf", "")):
            return self._problem(request, 403, "The form is stale: go back and try again.")
        try:
            if verb == "cancel":
                await self.source.tasks.cancel(str(task_id), "cancelled from the dashboard")
            elif verb == "retry":
                await self.source.tasks.requeue(str(task_id))
            else:
                count = await self.source.tasks.purge(TERMINAL_STATUSES)
                logger.info("dashboard purged %d finished tasks", count)
        except TaskNotFound:
            return self._problem(request, 404, "No task has this id.")
        except (QueueError, ValueError) as exc:
            return self._problem(request, 409, str(exc))
        return RedirectResponse(back, status_code=303)

    async def _confirm(self, request: Request, page: Page, verb: str, back: str) -> Response:
        if verb == "purge":
            body = confirm_page(page, "Purge finished tasks?",
                                "Every succeeded, failed and cancelled task is deleted for good.",
                                f"{page.root}/purge", "Purge finished tasks", back)
            return self._html(request, "Purge", body, "/tasks")
        task_id = request.path_params["task_id"]
        record = await self.source.record(task_id)
        if record is None:
            return self._problem(request, 404, "No task has this id.")
        text = (f"Cancel {record.name} ({task_id})? A running task is stopped by its worker."
                if verb == "cancel" else
                f"Run {record.name} ({task_id}) again from its first attempt?")
        label = "Cancel task" if verb == "cancel" else "Retry task"
        body = confirm_page(page, f"{label}?", text, f"{page.root}/task/{task_id}/{verb}",
                            label, back)
        return self._html(request, label, body, "/tasks")

    # -- live and login -------------------------------------------------------------
    async def _live(self, request: Request) -> Response:
        task_id = request.path_params.get("task_id")
        payload = overview_payload if task_id is None else task_payload(task_id)
        return StreamingResponse(event_stream(self.feed, task_id, payload),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    async def _login(self, request: Request) -> Response:
        root = _root(request)
        if not self.access.uses_login:
            return self._problem(request, 404, "This dashboard signs people in elsewhere.")
        if request.method == "GET":
            return self._html(request, "Sign in", login_page(root, False), "")
        form = await _form(request)
        if not self.access.token_matches(form.get("token", "")):
            return self._html(request, "Sign in", login_page(root, True), "",
                              status_code=401)
        response = RedirectResponse(f"{root}/", status_code=303)
        self.access.set_cookie(response, DASHBOARD_COOKIE, self.access.session_value(),
                               root or "/")
        return response
