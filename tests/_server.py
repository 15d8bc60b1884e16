"""Serving an app with a real uvicorn in a background thread, for tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def send_and_hang_up(url: str, request: bytes) -> None:
    """Send a raw HTTP request to ``url`` and close the connection without reading."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(request)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free port; yields its base URL."""
    with serve_server(app) as (url, _server):
        yield url


@contextmanager
def serve_server(app: Any, **options: Any) -> Iterator[tuple[str, uvicorn.Server]]:
    """:func:`serve`, yielding the ``uvicorn.Server`` too (its ``server_state`` holds the
    open connections); ``options`` go to ``uvicorn.Config``."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(15)
