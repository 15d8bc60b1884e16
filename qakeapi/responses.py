"""Response classes: Starlette's, with a :class:`JSONResponse` that renders faster.

``JSONResponse`` produces exactly the bytes and headers of Starlette's (compact separators,
UTF-8, NaN refused) but reuses one encoder and builds the common headers (no extra headers,
a status with a body) directly. A handler returning a ``dict`` or ``list`` gets the same
bytes sent by :func:`send_json`, without a response object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.responses import JSONResponse as _StarletteJSONResponse
from starlette.types import Send

__all__ = [
    "FileResponse",
    "HTMLResponse",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Response",
    "StreamingResponse",
]

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_JSON_TYPE = (b"content-type", b"application/json")


def _render_json(content: Any) -> bytes:
    return _ENCODER.encode(content).encode("utf-8")


def _json_headers(body: bytes | memoryview) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", b"%d" % len(body)), _JSON_TYPE]


class JSONResponse(_StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        return _render_json(content)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        status = self.status_code
        if (headers is None and self.media_type == "application/json"
                and status >= 200 and status not in (204, 304)):
            self.raw_headers = _json_headers(self.body)
            return
        super().init_headers(headers)


async def send_json(send: Send, content: Any) -> None:
    """Send ``content`` as a 200 JSON response: what ``JSONResponse(content)`` would send."""
    body = _render_json(content)
    await send({"type": "http.response.start", "status": 200, "headers": _json_headers(body)})
    await send({"type": "http.response.body", "body": body})
