"""Requests/s of an endpoint scheduling one background task: qakeapi vs bare Starlette
(with Starlette's own BackgroundTasks), driven by the same load generator in the same run;
then of an endpoint validating a Pydantic model from a JSON body: qakeapi vs FastAPI.

(a) in-process: a minimal ASGI driver calling app(scope, receive, send), 64 at a time;
(b) under uvicorn: each app served by its own uvicorn process, driven over loopback by
    64 keep-alive connections of a minimal HTTP/1.1 client (asyncio streams: it costs far
    less per request than httpx, so the figure shows the servers, not the client).

    python benchmarks/http_requests.py [--quick]
"""

from __future__ import annotations

import os
import sys

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")
sys.path.insert(0, APPS)

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

import http_apps
import httpx
import json_apps
from _servers import free_port

CONCURRENCY = 64
SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
    "scheme": "http", "path": "/order", "raw_path": b"/order", "query_string": b"",
    "root_path": "", "headers": [(b"host", b"bench"), (b"content-length", b"0")],
    "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
}


JSON_SCOPE: dict[str, Any] = {
    **SCOPE, "path": "/orders", "raw_path": b"/orders",
    "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                (b"content-length", str(len(json_apps.BODY)).encode())],
}


async def discard(message: dict[str, Any]) -> None:
    return None


async def drive_in_process(app: Any, n: int, scope: dict[str, Any] = SCOPE,
                           body: bytes = b"",
                           send: Callable[[dict[str, Any]], Awaitable[None]] = discard) -> float:
    """Requests/s of ``n`` calls of ``app`` with ``scope``, CONCURRENCY at a time; the
    response's messages go to ``send``."""
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    remaining = n

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await app(dict(scope), receive, send)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return n / (time.perf_counter() - start)


async def in_process(app: Any, n: int, scope: dict[str, Any] = SCOPE,
                     body: bytes = b"") -> float:
    """Requests/s of ``app`` driven in-process, inside its lifespan (warmed up first)."""
    router = getattr(app, "router", None)
    if hasattr(app, "lifespan"):
        lifespan = app.lifespan()
    elif router is not None and hasattr(router, "lifespan_context"):
        lifespan = router.lifespan_context(app)
    else:
        lifespan = contextlib.nullcontext()
    async with lifespan:
        await drive_in_process(app, n // 10, scope, body)
        return await drive_in_process(app, n, scope, body)


REQUEST = b"POST /order HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\n\r\n"
JSON_REQUEST = (b"POST /orders HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(json_apps.BODY)) + json_apps.BODY


async def one_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      request: bytes = REQUEST) -> None:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected response: {head[:60]!r}")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)


async def drive_server(port: int, n: int, request: bytes = REQUEST) -> float:
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CONCURRENCY)]
    try:
        for reader, writer in connections:
            await one_request(reader, writer, request)
        remaining = n

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await one_request(reader, writer, request)

        start = time.perf_counter()
        await asyncio.gather(*(client(r, w) for r, w in connections))
        return n / (time.perf_counter() - start)
    finally:
        for _, writer in connections:
            writer.close()


SERVER_CPU_US: dict[str, list[float]] = {}
"""Server CPU time per request of each uvicorn run, by app (Linux: /proc)."""


def process_cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def under_uvicorn(target: str, n: int, request: bytes = REQUEST) -> float:
    """Requests/s of ``target`` (``module:attribute`` in benchmarks/apps) under uvicorn."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", target, "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=APPS, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.1)
        before = process_cpu_seconds(server.pid)
        rate = asyncio.run(drive_server(port, n, request))
        after = process_cpu_seconds(server.pid)
        if before is not None and after is not None:
            SERVER_CPU_US.setdefault(target, []).append((after - before) / n * 1e6)
        return rate
    finally:
        server.terminate()
        server.wait(20)


def median_of(rounds: int, names: tuple[str, str], measure: Any) -> tuple[float, float]:
    """Median requests/s of the two apps over rounds that alternate which app goes first
    (this machine is shared: single runs swing by 10% or more either way)."""
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(rounds):
        order = names if round_number % 2 == 0 else names[::-1]
        for name in order:
            rates[name].append(measure(name))
    return statistics.median(rates[names[0]]), statistics.median(rates[names[1]])


def compare(names: tuple[str, str], apps: dict[str, Any], targets: dict[str, str],
            args: argparse.Namespace, title: str = "one background task per request",
            scope: dict[str, Any] = SCOPE, body: bytes = b"", request: bytes = REQUEST) -> None:
    """Print requests/s of both apps and the ratio second/first, in-process and under
    uvicorn, with the server CPU time per request."""
    n_local, n_server, rounds = (2_000, 500, 1) if args.quick else (20_000, 10_000, 7)
    print(f"{title} (in-process N={n_local:,}, uvicorn N={n_server:,};"
          f" median of alternating rounds)")
    print(f"{'driver':<12}{names[0]:>12}{names[1]:>12}{'ratio':>8}")
    first, second = median_of(
        rounds, names, lambda name: asyncio.run(in_process(apps[name], n_local, scope, body)))
    print(f"{'in-process':<12}{first:>12,.0f}{second:>12,.0f}{second / first:>8.2f}")
    SERVER_CPU_US.clear()
    first, second = median_of(
        max(1, rounds - 2), names,
        lambda name: under_uvicorn(targets[name], n_server, request))
    print(f"{'uvicorn':<12}{first:>12,.0f}{second:>12,.0f}{second / first:>8.2f}")
    if len(SERVER_CPU_US) == 2:
        cpu_first = statistics.median(SERVER_CPU_US[targets[names[0]]])
        cpu_second = statistics.median(SERVER_CPU_US[targets[names[1]]])
        print(f"{'uvicorn CPU':<12}{cpu_first:>10.0f}us{cpu_second:>10.0f}us"
              f"{cpu_first / cpu_second:>8.2f}   (server CPU per request; ratio "
              f"{names[0]}/{names[1]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    names = ("starlette", "qakeapi")
    compare(names, {"starlette": http_apps.starlette_app, "qakeapi": http_apps.qakeapi_app},
            {name: f"http_apps:{name}_app" for name in names}, args)
    print("ratio target >= 0.95")
    print()
    names = ("fastapi", "qakeapi")
    compare(names, {"fastapi": json_apps.fastapi_json_app,
                    "qakeapi": json_apps.qakeapi_json_app},
            {name: f"json_apps:{name}_json_app" for name in names}, args,
            title="JSON body validated into a Pydantic model", scope=JSON_SCOPE,
            body=json_apps.BODY, request=JSON_REQUEST)
    print("JSON-body ratio target >= 1.0 (qakeapi/fastapi)")


if __name__ == "__main__":
    main()
