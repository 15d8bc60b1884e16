"""What a rate limit costs per request: requests/s of one JSON endpoint, in-process (a minimal
ASGI driver, 64 requests at a time), against the same endpoint without any limit measured in
the same run (the reference):

* the app with RateLimitMiddleware whose limits match other paths (no limit applies);
* ``@rate_limit`` on the route, and the middleware limiting the route, with the counters in
  memory, in a SQLite file and in Redis (the rate is high enough never to refuse).

    python benchmarks/ratelimit.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

import redis
from http_requests import drive_in_process

from qakeapi import QakeAPI
from qakeapi.ratelimit import RateLimit, RateLimitMiddleware, rate_limit

NEVER = "1000000000/day"
REDIS_URL = os.environ.get("QAKEAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def scope(path: str) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": [(b"host", b"bench")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}


async def drive(app: Any, path: str, n: int) -> float:
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    rate = await drive_in_process(app, n, scope(path), send=send)
    if set(statuses) != {200}:
        raise SystemExit(f"{path}: statuses {sorted(set(statuses))}")
    return rate


async def lifespan_run(app: QakeAPI, path: str, n: int) -> float:
    async with app.lifespan():
        await drive(app, path, min(n, 200))  # warm-up: connections opened, code paths hot
        return await drive(app, path, n)


def plain_app() -> QakeAPI:
    app = QakeAPI(queue_url="memory://")

    @app.get("/item")
    async def item() -> dict[str, int]:
        return {"id": 1}

    return app


def decorated_app(url: str) -> QakeAPI:
    app = QakeAPI(queue_url="memory://")

    @app.get("/item")
    @rate_limit(NEVER, url=url)
    async def item() -> dict[str, int]:
        return {"id": 1}

    return app


def middleware_app(url: str, path: str) -> QakeAPI:
    app = plain_app()
    app.add_middleware(RateLimitMiddleware, url=url, limits=[RateLimit(NEVER, path=path)])
    return app


def redis_available() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    n = 300 if parser.parse_args().quick else 20_000
    directory = tempfile.mkdtemp()
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    urls = {"memory": "memory://", "sqlite": f"sqlite:///{directory}/tasks.db"}
    if redis_available():
        urls["redis"] = f"{REDIS_URL}?prefix={prefix}"
    cases: list[tuple[str, Callable[[], QakeAPI]]] = [
        ("middleware, no limit applies", lambda: middleware_app("memory://", "/other"))]
    for name, url in urls.items():
        cases.append((f"{name}: @rate_limit", lambda url=url: decorated_app(url)))
        cases.append((f"{name}: middleware", lambda url=url: middleware_app(url, "/item")))
    rounds = 1 if n < 1000 else 3
    best: dict[str, float] = {}
    try:
        # Rounds interleave the cases, and each keeps its best: on a shared machine the
        # load changes within a run, and a ratio of two bests compares like with like.
        for _ in range(rounds):
            rate = asyncio.run(lifespan_run(plain_app(), "/item", n))
            best["reference"] = max(best.get("reference", 0.0), rate)
            for label, make in cases:
                rate = asyncio.run(lifespan_run(make(), "/item", n))
                best[label] = max(best.get(label, 0.0), rate)
        reference = best["reference"]
        print(f"{'no limit (reference)':34} {reference:10,.0f} req/s   (best of {rounds})")
        for label, _ in cases:
            print(f"{label:34} {best[label]:10,.0f} req/s   ratio {best[label] / reference:.2f} "
                  f"of the reference")
        if "redis" not in urls:
            print("redis: skipped (no Redis answers at QAKEAPI_TEST_REDIS_URL)")
    finally:
        if "redis" in urls:
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}:*"))
            if keys:
                client.delete(*keys)


if __name__ == "__main__":
    main()
