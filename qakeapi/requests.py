"""The request object handlers receive: Starlette's, with a clear error for bad JSON."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import HTTPConnection
from starlette.requests import Request as _StarletteRequest

from .exceptions import HTTPException

__all__ = ["HTTPConnection", "Request"]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class Request(_StarletteRequest):
    async def json(self) -> Any:
        """The body parsed as JSON; a malformed body is a 400 with a clear message.

        Malformed includes bytes that are not UTF-8, ``NaN``/``Infinity`` (not JSON, and
        never renderable in a JSON response) and nesting deeper than Python can parse."""
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = json.loads(body, parse_constant=_refuse_constant)
            except RecursionError:
                raise HTTPException(400, "malformed JSON body: nested too deeply") from None
            except ValueError as exc:  # UnicodeDecodeError included
                raise HTTPException(400, f"malformed JSON body: {exc}") from exc
        return self._json
