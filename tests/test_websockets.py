"""WebSocket routes (qakeapi._websocket): injection as for HTTP handlers, bad parameters
refused (1008), a failing handler logged and closed with 1011; under uvicorn a client that
hangs up mid-message leaves no task and no connection behind."""

from __future__ import annotations

import base64
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
import websocket as websocket_client
from starlette.websockets import WebSocketDisconnect

from qakeapi import (
    BackgroundTaskManager,
    Depends,
    Inject,
    QakeAPI,
    Router,
    add_background_task,
)
from qakeapi.testing import TestClient
from qakeapi.websockets import WebSocket

from ._server import serve_server


class Greeting:
    def __init__(self) -> None:
        self.text = "hello"


def chat_app() -> QakeAPI:
    app = QakeAPI()
    router = Router(prefix="/rooms")

    @router.websocket("/{room}")
    async def chat(ws: WebSocket, room: str, name: str, times: int = 1,
                   greeting: Greeting = Inject(Greeting)) -> None:
        await ws.accept()
        while True:
            text = await ws.receive_text()
            for _ in range(times):
                await ws.send_json({"room": room, "from": name, "text": text,
                                    "greeting": greeting.text})

    app.include_router(router)

    @app.websocket("/plain")
    async def plain(websocket: Any) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    @app.websocket("/broken")
    async def broken(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        raise RuntimeError("handler bug")

    return app


def test_a_websocket_handler_gets_path_query_and_injected_parameters() -> None:
    with TestClient(chat_app()) as client:
        with client.websocket_connect("/rooms/blue?name=bo&times=2") as ws:
            ws.send_text("hey")
            expected = {"room": "blue", "from": "bo", "text": "hey", "greeting": "hello"}
            assert [ws.receive_json(), ws.receive_json()] == [expected, expected]
        with client.websocket_connect("/plain") as ws:
            assert ws.receive_text() == "hi"
    route_names = {getattr(r, "name", None) for r in client.app.routes}
    assert {"chat", "plain", "broken"} <= route_names


@pytest.mark.parametrize("query", ["", "?name=bo&times=many"])
def test_bad_parameters_refuse_the_connection_with_1008(query: str) -> None:
    with TestClient(chat_app()) as client, pytest.raises(WebSocketDisconnect) as refused, \
            client.websocket_connect(f"/rooms/blue{query}"):
        pass
    assert refused.value.code == 1008
    assert ("name" if not query else "times") in refused.value.reason


def test_a_failing_handler_is_logged_and_closed_with_1011(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "qakeapi.websockets"), \
            TestClient(chat_app()) as client, client.websocket_connect("/broken") as ws:
        ws.send_text("boom")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1011
    [record] = caplog.records
    assert "broken" in record.getMessage() and record.exc_info is not None
    assert str(record.exc_info[1]) == "handler bug"


def test_a_websocket_handler_must_be_async() -> None:
    app = QakeAPI()

    def sync_handler(websocket: WebSocket) -> None:
        return None

    with pytest.raises(TypeError, match="must be an async function"):
        app.websocket("/ws")(sync_handler)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


def handshake(url: str, path: str) -> socket.socket:
    """A raw WebSocket opening handshake, so the test can send half a frame."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


def test_under_uvicorn_a_client_leaving_mid_message_leaves_nothing_behind() -> None:
    app = QakeAPI()
    ended: list[str] = []
    started = {"count": 0}

    @app.websocket("/feed")
    async def feed(websocket: WebSocket) -> None:
        await websocket.accept()
        started["count"] += 1

        async def pushing() -> None:
            try:
                while True:
                    await websocket.send_text("tick")
                    await anyio.sleep(0.01)
            finally:
                ended.append("pusher")

        async def listening() -> None:
            try:
                while True:
                    await websocket.receive_text()
            finally:
                ended.append("listener")

        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(pushing)
                tasks.start_soon(listening)
        finally:
            ended.append("handler")

    with serve_server(app, ws="wsproto") as (url, server):
        state = server.server_state
        ws_url = url.replace("http://", "ws://") + "/feed"
        client = websocket_client.create_connection(ws_url, timeout=10)
        assert client.recv() == "tick"
        client.close()
        wait_until(lambda: len(ended) == 3, "the first handler ended")
        assert sorted(ended) == ["handler", "listener", "pusher"]

        ended.clear()
        sock = handshake(url, "/feed")
        wait_until(lambda: started["count"] == 2, "the second handler started")
        # A masked text frame announcing 100 bytes, of which only 10 arrive.
        sock.sendall(bytes([0x81, 0x80 | 100]) + os.urandom(4) + b"x" * 10)
        sock.close()
        wait_until(lambda: len(ended) == 3, "the second handler ended")
        wait_until(lambda: not state.connections and not state.tasks,
                   "uvicorn let the connection go")
        assert sorted(ended) == ["handler", "listener", "pusher"]
        assert (len(state.connections), len(state.tasks)) == (0, 0)


def test_websocket_dependencies_that_yield_end_with_the_session_and_failures_close_1011(
        caplog: pytest.LogCaptureFixture) -> None:
    app = QakeAPI()
    events: list[str] = []

    async def subscription(topic: str) -> AsyncIterator[str]:
        events.append(f"subscribe {topic}")
        yield topic
        events.append(f"unsubscribe {topic}")

    def broken_dependency() -> str:
        raise ConnectionError("no broker")

    @app.websocket("/topics")
    async def topics(websocket: WebSocket, topic: str = Depends(subscription)) -> None:
        await websocket.accept()
        events.append("session")
        await websocket.send_text(topic)

    @app.websocket("/broker")
    async def broker(websocket: WebSocket, conn: str = Depends(broken_dependency)) -> None:
        await websocket.accept()

    with caplog.at_level(logging.ERROR, "qakeapi.websockets"), TestClient(app) as client:
        with client.websocket_connect("/topics?topic=news") as ws:
            assert ws.receive_text() == "news"
            with pytest.raises(WebSocketDisconnect) as ended:
                ws.receive_text()
        assert ended.value.code == 1000
        assert events == ["subscribe news", "session", "unsubscribe news"]
        with pytest.raises(WebSocketDisconnect) as refused, \
                client.websocket_connect("/broker"):
            pass
    assert refused.value.code == 1011
    [record] = caplog.records
    assert record.exc_info is not None and str(record.exc_info[1]) == "no broker"


def test_a_background_task_added_in_a_session_starts_at_once() -> None:
    app = QakeAPI()
    ran: list[str] = []

    async def note(what: str) -> None:
        ran.append(what)

    @app.websocket("/notes")
    async def notes(websocket: WebSocket) -> None:
        await websocket.accept()
        task_id = await add_background_task(note, await websocket.receive_text())
        # Not held until the session ends: it runs while the session is still open.
        await BackgroundTaskManager().wait(task_id, timeout=10)
        await websocket.send_text(",".join(ran))

    with TestClient(app) as client, client.websocket_connect("/notes") as ws:
        ws.send_text("hello")
        assert ws.receive_text() == "hello"
