"""Requests/s of an endpoint scheduling one background task: qakeapi vs bare Starlette
(with Starlette's own BackgroundTasks), driven by the same load generator in the same run.

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
import socket
import statistics
import subprocess
import time
from typing import Any

import http_apps
import httpx

CONCURRENCY = 64
SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
    "scheme": "http", "path": "/order", "raw_path": b"/order", "query_string": b"",
    "root_path": "", "headers": [(b"host", b"bench"), (b"content-length", b"0")],
    "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
}


async def drive_in_process(app: Any, n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    remaining = n

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await app(dict(SCOPE), receive, send)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return n / (time.perf_counter() - start)


async def in_process(name: str, app: Any, n: int) -> float:
    if name == "qakeapi":
        async with app.lifespan():
            await drive_in_process(app, n // 10)
            return await drive_in_process(app, n)
    await drive_in_process(app, n // 10)
    return await drive_in_process(app, n)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


REQUEST = b"POST /order HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\n\r\n"


async def one_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(REQUEST)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected response: {head[:60]!r}")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)


async def drive_server(port: int, n: int) -> float:
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CONCURRENCY)]
    try:
        for reader, writer in connections:
            await one_request(reader, writer)
        remaining = n

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await one_request(reader, writer)

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


def under_uvicorn(target: str, n: int) -> float:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"http_apps:{target}", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=APPS, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.post(f"http://127.0.0.1:{port}/order", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.1)
        before = process_cpu_seconds(server.pid)
        rate = asyncio.run(drive_server(port, n))
        after = process_cpu_seconds(server.pid)
        if before is not None and after is not None:
            SERVER_CPU_US.setdefault(target, []).append((after - before) / n * 1e6)
        return rate
    finally:
        server.terminate()
        server.wait(20)


def median_of(rounds: int, measure: Any) -> tuple[float, float]:
    """Median requests/s of each app over rounds that alternate which app goes first (this
    machine is shared: single runs swing by 10% or more either way)."""
    rates: dict[str, list[float]] = {"starlette": [], "qakeapi": []}
    for round_number in range(rounds):
        order = ["starlette", "qakeapi"] if round_number % 2 == 0 else ["qakeapi", "starlette"]
        for name in order:
            rates[name].append(measure(name))
    return statistics.median(rates["starlette"]), statistics.median(rates["qakeapi"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_local, n_server, rounds = (2_000, 500, 1) if args.quick else (20_000, 10_000, 7)
    print(f"one background task per request (in-process N={n_local:,}, uvicorn N={n_server:,};"
          f" median of alternating rounds)")
    print(f"{'driver':<12}{'starlette':>12}{'qakeapi':>12}{'ratio':>8}")
    apps = {"starlette": http_apps.starlette_app, "qakeapi": http_apps.qakeapi_app}
    starlette_rate, qakeapi_rate = median_of(
        rounds, lambda name: asyncio.run(in_process(name, apps[name], n_local)))
    print(f"{'in-process':<12}{starlette_rate:>12,.0f}{qakeapi_rate:>12,.0f}"
          f"{qakeapi_rate / starlette_rate:>8.2f}")
    starlette_rate, qakeapi_rate = median_of(
        max(1, rounds - 2), lambda name: under_uvicorn(f"{name}_app", n_server))
    print(f"{'uvicorn':<12}{starlette_rate:>12,.0f}{qakeapi_rate:>12,.0f}"
          f"{qakeapi_rate / starlette_rate:>8.2f}")
    if len(SERVER_CPU_US) == 2:
        cpu_s = statistics.median(SERVER_CPU_US["starlette_app"])
        cpu_q = statistics.median(SERVER_CPU_US["qakeapi_app"])
        print(f"{'uvicorn CPU':<12}{cpu_s:>10.0f}us{cpu_q:>10.0f}us{cpu_s / cpu_q:>8.2f}"
              "   (server CPU per request; ratio starlette/qakeapi)")
    print("ratio target >= 0.90")


if __name__ == "__main__":
    main()
