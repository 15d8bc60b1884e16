"""Test clients on httpx that run the app's lifespan.

``TestClient`` is synchronous (Starlette's, run in a portal thread); ``AsyncTestClient`` is
for async tests. Both answer server errors with the 500 response (the traceback is logged)
instead of raising, unless ``raise_server_exceptions=True``.
"""

from __future__ import annotations

import warnings
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import httpx

with warnings.catch_warnings():
    # Starlette >= 1.x prefers "httpx2" for its test client; httpx works the same here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient as _StarletteTestClient

__all__ = ["AsyncTestClient", "TestClient"]


class TestClient(_StarletteTestClient):
    """``with TestClient(app) as client:`` runs startup, then shutdown on exit."""

    __test__ = False

    def __init__(
        self,
        app: Any,
        base_url: str = "http://testserver",
        raise_server_exceptions: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            app, base_url=base_url, raise_server_exceptions=raise_server_exceptions, **kwargs
        )


class AsyncTestClient(httpx.AsyncClient):
    """``async with AsyncTestClient(app) as client:`` runs the app's lifespan around it."""

    __test__ = False

    def __init__(
        self,
        app: Any,
        base_url: str = "http://testserver",
        raise_server_exceptions: bool = False,
        **kwargs: Any,
    ) -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_server_exceptions)
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
