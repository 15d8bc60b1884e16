"""PLACEHOLDER (owned by the queue-core helper, who replaces this file)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


class QueuedTasks:
    def __init__(self, url: str | None = None, **options: Any) -> None:
        self.url = url

    @asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        yield
