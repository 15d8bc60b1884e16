"""``qakeapi run`` as a real server process: slow and greedy clients are dropped."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ._processes import env_for, stop, wait_until
from ._server import free_port
from .test_http_limits import push_body, read_response

pytestmark = pytest.mark.slow

APP = '''
from qakeapi import QakeAPI
from qakeapi.requests import Request

app = QakeAPI()


@app.get("/ping")
async def ping():
    return {"pong": True}


@app.post("/upload")
async def upload(request: Request):
    return {"size": len(await request.body())}
'''


def start_server(directory: Path, *options: str, **env: str) -> tuple[subprocess.Popen[bytes],
                                                                        int]:
    (directory / "limitsapp.py").write_text(textwrap.dedent(APP))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "qakeapi", "run", "limitsapp:app", "--port", str(port),
         "--log-level", "warning", *options],
        cwd=directory, env=env_for(directory, **env), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            return httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 30, "qakeapi run to serve")
    return process, port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[int]:
    process, port = start_server(
        tmp_path, "--header-timeout", "1", "--timeout-keep-alive", "1", "--body-timeout", "1",
        "--max-body-size", str(1024 * 1024))
    try:
        yield port
    finally:
        stop(process)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("sent", [b"", b"GET /ping HTTP/1.1\r\nHost: x\r\n"],
                         ids=["idle", "half-headers"])
def test_connection_without_complete_headers_is_closed(server: int, sent: bytes) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(sent)
        assert read_response(sock) == b""  # closed by the server, no socket timeout


def test_idle_keep_alive_connection_is_closed(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 200 ") and response.endswith(b'{"pong":true}')


def test_half_a_body_is_408_and_closed(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")
        response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 408 "), response[:200]


def test_200_mib_chunked_body_is_413_without_growing_the_server(tmp_path: Path) -> None:
    process, port = start_server(tmp_path)  # the default limit (1 MiB)
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sent = push_body(sock, b"POST /upload HTTP/1.1\r\nHost: x\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n", 200 * 1024 * 1024,
                             chunked=True)
            response = read_response(sock)
        assert response.startswith(b"HTTP/1.1 413 "), response[:200]
        assert sent < 50 * 1024 * 1024
        assert peak_rss_kib(process.pid) < 150 * 1024
    finally:
        stop(process)


def test_limit_concurrency_answers_503(tmp_path: Path) -> None:
    process, port = start_server(tmp_path, "--limit-concurrency", "2")
    url = f"http://127.0.0.1:{port}/ping"
    try:
        with socket.create_connection(("127.0.0.1", port)):
            wait_until(lambda: httpx.get(url).status_code == 503, 30,
                       "a 503 while another connection is open")
        wait_until(lambda: httpx.get(url).status_code == 200, 30, "a 200 once it closed")
    finally:
        stop(process)


@pytest.mark.parametrize(("options", "env", "message"), [
    (["--max-body-size", "-1"], {}, "Invalid value for '--max-body-size'"),
    (["--header-timeout", "soon"], {}, "Invalid value for '--header-timeout'"),
    ([], {"QAKEAPI_MAX_BODY_SIZE": "1MB"},
     "Error: limitsapp:app: QAKEAPI_MAX_BODY_SIZE='1MB' is not a valid int"),
])
def test_bad_options_are_one_line_errors(tmp_path: Path, options: list[str],
                                         env: dict[str, str], message: str) -> None:
    (tmp_path / "limitsapp.py").write_text(textwrap.dedent(APP))
    result = subprocess.run(
        [sys.executable, "-m", "qakeapi", "run", "limitsapp:app", "--port", str(free_port()),
         *options], cwd=tmp_path, env=env_for(tmp_path, **env), capture_output=True,
        timeout=60)
    assert result.returncode != 0
    assert message in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()
