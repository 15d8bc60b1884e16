"""The ASGI app behind a WebSocket route: ``@app.websocket("/ws")``.

The handler takes the :class:`~qakeapi.websockets.WebSocket` (by annotation or the name
``websocket``) and the same injected parameters as an HTTP handler: path and query
parameters, headers, ``Inject``/``Depends``. A parameter that can't be filled closes the
connection with 1008 (policy violation) before it is accepted. A client that goes away
ends the handler with ``WebSocketDisconnect`` (quietly: that is how sessions end); any other
exception is logged and the connection closed with 1011 (internal error).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException as _StarletteHTTPException
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect, WebSocketState

from ._params import plan_callable
from .constants import WS_CLOSE_INTERNAL_ERROR, WS_CLOSE_NORMAL, WS_CLOSE_POLICY_VIOLATION
from .dependencies import DependencyError
from .websockets import WebSocket

if TYPE_CHECKING:
    from .dependencies import Container

__all__ = ["WebSocketEndpoint"]

logger = logging.getLogger("qakeapi.websockets")
_APP_SCOPE_KEY = "qakeapi.app"


class WebSocketEndpoint:
    """The ASGI app behind one WebSocket route (Starlette's ``WebSocketRoute.endpoint``)."""

    __slots__ = ("container", "handler", "name", "plan")

    def __init__(self, handler: Callable[..., Any], path_params: Iterable[str]) -> None:
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"WebSocket handler {handler!r} must be an async function")
        self.handler = handler
        self.name = getattr(handler, "__qualname__", repr(handler))
        self.plan = plan_callable(handler, path_params=path_params)
        self.container: Container | None = None

    def _container(self, scope: Scope) -> Container:
        if self.container is not None:
            return self.container
        app = scope.get(_APP_SCOPE_KEY)
        if app is None:
            raise DependencyError(f"{self.name!r} is not served by a QakeAPI app")
        container: Container = app.container
        return container

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        async with AsyncExitStack() as stack:
            try:
                kwargs = await self._arguments(websocket, stack)
            except _StarletteHTTPException as exc:
                # Bad parameters (422) or a refusal from a dependency: not accepted.
                logger.info("WebSocket %s refused: %s %s", scope.get("path"),
                            exc.status_code, exc.detail)
                await websocket.close(WS_CLOSE_POLICY_VIOLATION, reason=_reason(exc.detail))
                return
            except Exception:
                logger.exception("WebSocket %s: the parameters of %s could not be filled",
                                 scope.get("path"), self.name)
                await _close_quietly(websocket, WS_CLOSE_INTERNAL_ERROR)
                return
            try:
                await self.handler(**kwargs)
            except WebSocketDisconnect:
                return
            except Exception:
                if _gone(websocket):
                    # Sending to a client that left: the session ended, nothing to close.
                    logger.info("WebSocket %s: the client left while %s was sending",
                                scope.get("path"), self.name, exc_info=True)
                    return
                logger.exception("WebSocket handler %s failed on %s", self.name,
                                 scope.get("path"))
                await _close_quietly(websocket, WS_CLOSE_INTERNAL_ERROR)
                return
            # Returned without closing: closed normally (before accept(): refused).
            await _close_quietly(websocket, WS_CLOSE_NORMAL)

    async def _arguments(self, websocket: WebSocket, stack: AsyncExitStack) -> dict[str, Any]:
        if not self.plan.params:
            return {}
        return await self.plan.resolve(websocket, self._container(websocket.scope), stack)


def _reason(detail: Any) -> str:
    # RFC 6455 limits a close reason to 123 bytes of UTF-8.
    return str(detail).encode()[:123].decode(errors="ignore")


def _gone(websocket: WebSocket) -> bool:
    return WebSocketState.DISCONNECTED in (websocket.client_state, websocket.application_state)


async def _close_quietly(websocket: WebSocket, code: int) -> None:
    if _gone(websocket):
        return
    try:
        await websocket.close(code)
    except Exception:
        logger.debug("closing WebSocket %s failed", websocket.url.path, exc_info=True)
