"""Test clients on httpx that run the app's lifespan (``pip install "qakeapi[testing]"``).

``TestClient`` is synchronous (Starlette's, run in a portal thread); ``AsyncTestClient`` is
for async tests. As Starlette's, both raise a server error in the test by default (after the
app has logged it and sent its 500); ``raise_server_exceptions=False`` gives the 500
response instead.
"""

from __future__ import annotations

import warnings
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

try:
    import httpx
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        'qakeapi.testing needs httpx: pip install "qakeapi[testing]"') from exc

with warnings.catch_warnings():
    # Starlette >= 1.x prefers "httpx2" for its test client; httpx works the same here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient as _StarletteTestClient

from starlette.types import ASGIApp, Receive, Scope, Send

from .app import RAISE_SERVER_EXCEPTIONS_KEY

__all__ = ["AsyncTestClient", "TestClient"]


class _RaisingServerErrors:
    """``app`` with every request marked: a server error is raised to the test client."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            scope[RAISE_SERVER_EXCEPTIONS_KEY] = True
        await self.app(scope, receive, send)


def _served(app: Any, raise_server_exceptions: bool) -> Any:
    return _RaisingServerErrors(app) if raise_server_exceptions else app


class TestClient(_StarletteTestClient):
    """``with TestClient(app) as client:`` runs startup, then shutdown on exit."""

    __test__ = False

    def __init__(
        self,
        app: Any,
        base_url: str = "http://testserver",
        raise_server_exceptions: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            _served(app, raise_server_exceptions), base_url=base_url,
            raise_server_exceptions=raise_server_exceptions, **kwargs
        )
        self.app = app  # what tests look at; the lifespan needs no marking


class AsyncTestClient(httpx.AsyncClient):
    """``async with AsyncTestClient(app) as client:`` runs the app's lifespan around it."""

    __test__ = False

    def __init__(
        self,
        app: Any,
        base_url: str = "http://testserver",
        raise_server_exceptions: bool = True,
        **kwargs: Any,
    ) -> None:
        transport = httpx.ASGITransport(app=_served(app, raise_server_exceptions),
                                        raise_app_exceptions=raise_server_exceptions)
        super().__init__(transport=transport, base_url=base_url, **kwargs)
        self.app = app
        self._lifespan_stack = AsyncExitStack()

    async def __aenter__(self) -> AsyncTestClient:
        await self._lifespan_stack.__aenter__()
        try:
            await self._lifespan_stack.enter_async_context(self.app.lifespan())
            await super().__aenter__()
        except BaseException:
            await self._lifespan_stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        try:
            await super().__aexit__(exc_type, exc_value, traceback)
        finally:
            await self._lifespan_stack.__aexit__(exc_type, exc_value, traceback)
