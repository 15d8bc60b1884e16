"""QakeAPI 1.3.1's ``examples/complete_example.py``, moved over to qakeapi.

What changed (docs/migrating.md has the whole list):

* ``UserCreate``, a plain class with ``__init__`` and ``dict()``, is a Pydantic model: the
  body is validated (a bad one is a 422 in FastAPI's shape) and ``user.model_dump()``
  replaces ``user.dict()``.
* ``LoggingMiddleware()`` is an ``@app.middleware("http")`` function;
  ``CORSMiddleware(allow_origins=["*"])`` is Starlette's, added by class, with
  ``allow_methods=["*"], allow_headers=["*"]`` (1.3.1's defaults; Starlette's are GET only).
* ``@app.react("user:created")`` with ``event.data`` is ``@app.on("user:created")``, whose
  listener receives the data itself.
* ``add_background_task`` is qakeapi's: awaited inside the request, the task starts once the
  response has been sent.
* ``WebSocket`` comes from ``qakeapi.websockets`` (Starlette's, with the same ``accept``,
  ``send_json`` and ``iter_json``).
* ``/docs`` and ``/openapi.json`` are there as before; ``title``, ``version`` and
  ``description`` head the document.

Run it with ``qakeapi run examples.migrated.complete_app:app``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from pydantic import BaseModel
from starlette.middleware.cors import CORSMiddleware

from qakeapi import QakeAPI, Request, Response, add_background_task
from qakeapi.websockets import WebSocket

log = logging.getLogger("complete_app")

app = QakeAPI(
    title="QakeAPI 1.2.0 Complete Example",
    version="1.2.0",
    description="Complete example demonstrating all QakeAPI features",
    debug=True,
)
app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"],
                   allow_headers=["*"])

emails_sent: list[str] = []
"""Welcome emails "sent" by the background task (the original printed them)."""
users_created: list[dict[str, Any]] = []
"""What the ``user:created`` listener received."""


@app.middleware("http")
async def log_requests(request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    log.info("%s %s -> %s", request.method, request.url.path, response.status_code)
    return response


@app.get("/users/{id}")
def get_user(id: int) -> dict[str, Any]:
    """Get user by ID - a plain function, run in a worker thread."""
    return {"id": id, "name": f"User {id}", "type": "sync"}


@app.get("/items/{item_id}")
async def get_item(item_id: int) -> dict[str, Any]:
    """Get item by ID - async function."""
    return {"item_id": item_id, "name": f"Item {item_id}", "type": "async"}


class UserCreate(BaseModel):
    """Model for creating a user."""

    name: str
    email: str
    age: int | None = None


@app.post("/users")
async def create_user(user: UserCreate) -> dict[str, Any]:
    """Create a user: the JSON body is validated into ``UserCreate``."""
    await add_background_task(send_welcome_email, user.email)
    await app.emit("user:created", user.model_dump())
    return {"message": "User created", "user": user.model_dump()}


async def send_welcome_email(email: str) -> None:
    """Send a welcome email - a background task, run after the response."""
    log.info("sending welcome email to %s", email)
    await anyio.sleep(0.01)  # simulate sending
    emails_sent.append(email)


@app.on("user:created")
async def on_user_created(data: dict[str, Any]) -> None:
    """React to user creation."""
    users_created.append(data)


@app.websocket("/ws/{room}")
async def websocket_handler(websocket: WebSocket, room: str) -> None:
    await websocket.accept()
    await websocket.send_json({"message": f"Welcome to room {room}!"})
    async for message in websocket.iter_json():
        await websocket.send_json({"echo": message, "room": room})


@app.get("/search")
def search(q: str, limit: int = 10) -> dict[str, Any]:
    """Search with query parameters."""
    return {"query": q, "limit": limit,
            "results": [f"Result {i} for {q}" for i in range(limit)]}


@app.on_startup
def startup() -> None:
    log.info("QakeAPI 1.2.0 Application started!")


@app.on_shutdown
def shutdown() -> None:
    log.info("QakeAPI 1.2.0 Application shutting down...")
