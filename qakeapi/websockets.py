"""The WebSocket a ``@app.websocket`` handler receives: Starlette's.

``WebSocketDisconnect`` is raised by ``receive_*`` when the client goes away (a handler may
let it propagate: the session simply ends); ``WebSocketState`` tells where a connection is.
"""

from __future__ import annotations

from starlette.websockets import WebSocket, WebSocketClose, WebSocketDisconnect, WebSocketState

__all__ = ["WebSocket", "WebSocketClose", "WebSocketDisconnect", "WebSocketState"]
