"""The application: ``app = QakeAPI()``, an ASGI app on Starlette.

Per HTTP request the app holds the tasks a handler adds with the same
:class:`~qakeapi.tasks_asgi.TaskMiddleware` a Starlette or FastAPI app uses (``QakeAPI`` is
one, around its Starlette app, with the body limits of
:class:`~qakeapi.http_limits.RequestLimits` in the same layer): queued tasks are stored before
the handler's response starts, background tasks start once the whole response has been
handed to the server, and both are dropped when the handler raises. It runs outside every
middleware, so no middleware can delay the response for a task or cancel a task by
cancelling the request.
"""

from __future__ import annotations

import inspect
import logging
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request as StarletteRequest
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from ._error_responder import EXCEPTION_HANDLERS_SCOPE_KEY, ErrorResponder
from ._openapi_docs import docs_app
from .constants import DEFAULT_DOCS_URL, DEFAULT_OPENAPI_URL
from .core.background import BackgroundTaskManager
from .dependencies import Container, check_dependencies
from .events import EventBus
from .exceptions import TooManyPendingTasks
from .http_limits import RequestLimits
from .openapi import build_openapi
from .queued_tasks import QueuedTasks
from .responses import JSONResponse, Response
from .routing import APP_SCOPE_KEY, Router
from .tasks_asgi import TaskMiddleware, tasks_lifespan

__all__ = ["QakeAPI"]

logger = logging.getLogger("qakeapi.app")

HANDLED_ERROR_KEY = "qakeapi.handled_error"
"""Scope key: the exception ``_server_error`` logged (it is re-raised to the app after the
500 response was sent, and must not be raised to the server a second time)."""
RAISE_SERVER_EXCEPTIONS_KEY = "qakeapi.raise_server_exceptions"
"""Scope key a test client sets: after the 500 response, the exception is raised to it (as
Starlette's ``ServerErrorMiddleware`` does) instead of being kept from the server."""
ExceptionHandler = Callable[[StarletteRequest, Any], Any]
F = TypeVar("F", bound=Callable[..., Any])


async def _call_hook(hook: Callable[[], Any]) -> None:
    result = hook()
    if inspect.isawaitable(result):
        await result


class QakeAPI(Router, TaskMiddleware):
    """An ASGI application with routes, events, dependency injection and task systems."""

    def __init__(
        self,
        *,
        debug: bool = False,
        middleware: Sequence[Middleware] | None = None,
        queue_url: str | None = None,
        import_name: str | None = None,
        max_body_size: int | None = None,
        body_timeout: float | None = None,
        title: str = "qakeapi",
        version: str = "0.1.0",
        description: str | None = None,
        openapi_url: str | None = DEFAULT_OPENAPI_URL,
        docs_url: str | None = DEFAULT_DOCS_URL,
        dependencies: Sequence[Any] = (),
    ) -> None:
        """``max_body_size`` (bytes, 0 = no limit) and ``body_timeout`` (seconds, 0 = none)
        default to ``QAKEAPI_MAX_BODY_SIZE`` / ``QAKEAPI_BODY_TIMEOUT``, else 1 MiB and 30 s:
        see :class:`qakeapi.http_limits.RequestLimits`. ``title``, ``version`` and
        ``description`` head the OpenAPI document served at ``openapi_url``, with Swagger UI at
        ``docs_url`` (``None`` turns either off): see docs/openapi.md. ``dependencies``
        (``[Depends(check)]``) run before every HTTP route's handler."""
        super().__init__(dependencies=tuple(dependencies))
        self.debug = debug
        self.events = EventBus()
        self.container = Container()
        self.import_name = import_name or sys._getframe(1).f_globals.get("__name__", "")
        """The module that created the app: queued-task workers may run its functions."""
        self.queued_tasks = QueuedTasks(queue_url)
        self.container.register(QueuedTasks, self.queued_tasks)
        self.container.register_factory(BackgroundTaskManager, BackgroundTaskManager)
        self._error_handler: ExceptionHandler | None = None
        self._startup: list[Callable[[], Any]] = []
        self._shutdown: list[Callable[[], Any]] = []
        self._starlette = Starlette(
            debug=False,
            middleware=list(middleware or []),
            exception_handlers={
                StarletteHTTPException: self._http_exception,
                TooManyPendingTasks: self._too_many_pending,
                Exception: self._server_error,
            },
            lifespan=self._lifespan,
        )
        self._starlette.state.qakeapi = self
        self.title, self.version, self.description = title, version, description
        self._openapi_document: dict[str, Any] | None = None
        router = self._starlette.router
        router.default = docs_app(self.openapi, title=lambda: self.title,
                                  openapi_url=openapi_url, docs_url=docs_url,
                                  fallback=router.default)
        self._limits = RequestLimits(self._starlette, max_body_size, body_timeout)
        self._http: Callable[[Scope, Receive, Send], Awaitable[None]] = self._first_http
        """Where an HTTP request goes past the body limits (chosen at the first one)."""
        self._errors: ErrorResponder | None = None
        """Set when that is the router itself: then this layer answers route errors."""
        TaskMiddleware.__init__(self, self._enter)

    @property
    def max_body_size(self) -> int:
        return self._limits.max_body_size

    @property
    def body_timeout(self) -> float:
        return self._limits.body_timeout

    # -- routes, middleware, hooks ---------------------------------------------------
    def _on_added(self, route: BaseRoute) -> None:
        route.endpoint.container = self.container  # type: ignore[attr-defined]
        self._starlette.router.routes.append(route)
        self._openapi_document = None

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of the app's routes, built on first use (and again after a
        route is added)."""
        if self._openapi_document is None:
            self._openapi_document = build_openapi(self.routes, title=self.title,
                                                   version=self.version,
                                                   description=self.description)
        return self._openapi_document

    def add_middleware(self, middleware_class: Any, *args: Any, **kwargs: Any) -> None:
        """Wrap the app in ``middleware_class(app, *args, **kwargs)`` (Starlette's CORS,
        GZip, TrustedHost..., or any ASGI middleware); the last added runs first."""
        self._starlette.add_middleware(middleware_class, *args, **kwargs)

    def middleware(self, middleware_type: str) -> Callable[[F], F]:
        """``@app.middleware("http")`` on ``async def mw(request, call_next) -> Response``
        (Starlette's ``BaseHTTPMiddleware``)."""
        if middleware_type != "http":
            raise ValueError(f'only @app.middleware("http") exists, got {middleware_type!r}')

        def decorator(dispatch: F) -> F:
            if not inspect.iscoroutinefunction(dispatch):
                raise TypeError(f"middleware {dispatch!r} must be an async function "
                                f"(request, call_next)")
            self.add_middleware(BaseHTTPMiddleware, dispatch=dispatch)
            return dispatch

        return decorator

    def exception_handler(self, exc_class_or_status_code: type[Exception] | int,
                          ) -> Callable[[F], F]:
        """``@app.exception_handler(ValueError)`` (or a status code such as 404) on
        ``(request, exc) -> Response`` (sync or async)."""
        def decorator(handler: F) -> F:
            self.add_exception_handler(exc_class_or_status_code, handler)
            return handler

        return decorator

    def add_exception_handler(self, exc_class_or_status_code: type[Exception] | int,
                              handler: ExceptionHandler) -> None:
        """Answer ``exc_class_or_status_code`` with ``handler(request, exc)``. A handler for
        ``Exception`` or 500 answers server errors, which are still logged first."""
        if self._starlette.middleware_stack is not None:
            raise RuntimeError("add exception handlers before the app starts")
        key = exc_class_or_status_code
        if isinstance(key, bool) or not (
                isinstance(key, int) or (isinstance(key, type)
                                         and issubclass(key, Exception))):
            raise TypeError(f"an exception handler is for an exception class or an HTTP "
                            f"status code, got {key!r}")
        if not callable(handler):
            raise TypeError(f"exception handler {handler!r} must be callable")
        if key in (500, Exception):
            self._error_handler = handler
        else:
            self._starlette.add_exception_handler(key, handler)

    def mount(self, path: str, app: Any, name: str | None = None) -> None:
        self._starlette.mount(path, app, name=name)

    @property
    def routes(self) -> list[Any]:
        return self._starlette.routes

    @property
    def state(self) -> Any:
        return self._starlette.state

    def url_path_for(self, name: str, /, **path_params: Any) -> str:
        return str(self._starlette.url_path_for(name, **path_params))

    def on_startup(self, hook: F) -> F:
        """Run ``hook`` (sync or async) when the app starts."""
        self._startup.append(hook)
        return hook

    def on_shutdown(self, hook: F) -> F:
        """Run ``hook`` (sync or async) when the app stops."""
        self._shutdown.append(hook)
        return hook

    # -- events ----------------------------------------------------------------------
    def on(self, pattern: str) -> Callable[[F], F]:
        """``@app.on("task:failed")``: listen to an event (``task:*`` and ``*`` match too)."""
        return self.events.on(pattern)

    async def emit(self, name: str, data: Any = None) -> None:
        await self.events.emit(name, data)

    # -- lifespan --------------------------------------------------------------------
    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Startup and shutdown, in order: background manager, startup hooks, queue."""
        async with tasks_lifespan(self.queued_tasks, events=self.events, app=self,
                                  startup=self._run_startup_hooks,
                                  shutdown=self._run_shutdown_hooks):
            yield

    @asynccontextmanager
    async def _lifespan(self, _app: Any) -> AsyncIterator[None]:
        async with self.lifespan():
            yield

    async def _run_startup_hooks(self) -> None:
        check_dependencies(self)  # a missing provider stops the start, naming the handler
        for hook in self._startup:
            try:
                await _call_hook(hook)
            except Exception:
                logger.exception("startup hook %r failed; the app does not start", hook)
                raise

    async def _run_shutdown_hooks(self) -> None:
        for hook in self._shutdown:
            try:
                await _call_hook(hook)
            except Exception:
                logger.exception("shutdown hook %r failed", hook)

    # -- errors ----------------------------------------------------------------------
    async def _http_exception(self, request: StarletteRequest, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=exc.headers)

    async def _too_many_pending(self, request: StarletteRequest, exc: Exception) -> Response:
        logger.warning("%s %s refused: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"retry-after": "1"})

    async def _server_error(self, request: StarletteRequest, exc: Exception) -> Any:
        if not request.scope.get(RAISE_SERVER_EXCEPTIONS_KEY):
            request.scope[HANDLED_ERROR_KEY] = exc  # else the test client raises it
        logger.error(
            "%s %s failed", request.method, request.url.path, exc_info=(type(exc), exc,
                                                                         exc.__traceback__)
        )
        if self._error_handler is not None:
            if inspect.iscoroutinefunction(self._error_handler):
                return await self._error_handler(request, exc)
            return await anyio.to_thread.run_sync(self._error_handler, request, exc)
        body: dict[str, Any] = {"detail": "Internal Server Error"}
        if self.debug:
            body["error"] = {
                "type": type(exc).__qualname__,
                "message": str(exc),
                "traceback": "".join(traceback.format_exception(exc)),
            }
        return JSONResponse(body, status_code=500)

    # -- ASGI ------------------------------------------------------------------------
    def _enter(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The app :class:`TaskMiddleware` calls: the body limits, then the routes. A plain
        function returning the awaitable to run, so that it adds no frame per request."""
        if scope["type"] == "http":
            scope[APP_SCOPE_KEY] = self
            needs = self._limits.screen(scope)
            if needs is True:
                return self._limits.guard(scope, receive, send)
            if needs is not False:
                return self._limits.refuse(scope, receive, send, needs)
            return self._http(scope, receive, send)
        if scope["type"] == "websocket":
            scope[APP_SCOPE_KEY] = self
        return self._starlette(scope, receive, send)

    def _first_http(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """Choose, once, where HTTP requests go: with middleware added, through Starlette's
        stack (its error layers answer inside the middleware); without, straight to the
        router, this layer answering errors (:mod:`qakeapi._error_responder`)."""
        starlette = self._starlette
        if starlette.middleware_stack is None:
            starlette.middleware_stack = starlette.build_middleware_stack()
        if starlette.user_middleware:
            self._http = starlette
        else:
            self._errors = ErrorResponder(starlette.exception_handlers)
            handlers = self._errors.scope_value
            router = starlette.router

            def to_router(scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
                # What Starlette.__call__ and ExceptionMiddleware put in the scope.
                scope["app"] = starlette
                scope[EXCEPTION_HANDLERS_SCOPE_KEY] = handlers
                return router(scope, receive, send)

            self._http = to_router
        self._limits.app = self._http
        return self._http(scope, receive, send)

    async def _answer_error(self, scope: Scope, receive: Receive, send: Send,
                            exc: BaseException, started: bool) -> bool:
        if self._errors is not None and scope["type"] == "http" and isinstance(exc, Exception):
            left = await self._errors.answer(scope, receive, send, exc, started)
            if left is None:
                return True
            if left is not exc and scope.get(HANDLED_ERROR_KEY) is not left:
                raise left
            exc = left
        # _server_error logged it and the error response was sent.
        return scope.get(HANDLED_ERROR_KEY) is exc
