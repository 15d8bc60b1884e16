"""The request object handlers receive: Starlette's, with a clear error for bad JSON."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import HTTPConnection
from starlette.requests import Request as _StarletteRequest

from .exceptions import HTTPException

__all__ = ["HTTPConnection", "Request"]


class Request(_StarletteRequest):
    async def json(self) -> Any:
        """The body parsed as JSON; a malformed body is a 400 with a clear message."""
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise HTTPException(400, f"malformed JSON body: {exc}") from exc
        return self._json
