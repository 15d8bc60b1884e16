"""What a request costs by the parameters its handler takes, driven in-process one at a time:
no parameters (the reference), only ``request``, plain path/query scalars, a Pydantic JSON
body, a sub-dependency with a query parameter. Prints microseconds per request and the ratio
to the reference measured in the same run.

Wall-clock figures swing on a shared machine; instruction counts don't. To compare two
checkouts, count instructions per request with callgrind (the difference of two sizes
removes start-up):

    valgrind --tool=callgrind python benchmarks/param_paths.py --only scalars -n 0
    valgrind --tool=callgrind python benchmarks/param_paths.py --only scalars -n 10000

    python benchmarks/param_paths.py [--quick] [--only NAME] [-n N]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from pydantic import BaseModel

from qakeapi import Depends, QakeAPI
from qakeapi.requests import Request


class Order(BaseModel):
    sku: str
    qty: int


def paging(limit: int = 10) -> int:
    return limit


async def async_paging(limit: int = 10) -> int:
    return limit


app = QakeAPI()


@app.get("/none")
async def no_params() -> dict[str, bool]:
    return {"ok": True}


@app.get("/request")
async def request_only(request: Request) -> dict[str, bool]:
    return {"ok": True}


@app.get("/scalars/{user_id}")
async def scalars(user_id: int, verbose: bool = False, tag: str | None = None) -> dict[str, bool]:
    return {"ok": True}


@app.post("/json")
async def json_body(order: Order) -> dict[str, bool]:
    return {"ok": True}


@app.get("/depends")
async def depends(limit: int = Depends(async_paging)) -> dict[str, bool]:
    return {"ok": True}


BODY = b'{"sku": "pen", "qty": 2}'
ROUTES: dict[str, tuple[str, str, bytes, bytes]] = {
    "none": ("GET", "/none", b"", b""),
    "request": ("GET", "/request", b"", b""),
    "scalars": ("GET", "/scalars/7", b"verbose=yes&tag=x", b""),
    "json": ("POST", "/json", b"", BODY),
    "depends": ("GET", "/depends", b"limit=5", b""),
}


async def run(name: str, n: int) -> float:
    method, path, query, body = ROUTES[name]
    headers = [(b"host", b"bench")]
    if body:
        headers += [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": query, "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(50):
        await app(dict(scope), receive, send)
    start = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), receive, send)
    elapsed = time.perf_counter() - start
    if set(statuses) != {200}:
        raise RuntimeError(f"{name}: unexpected statuses {sorted(set(statuses))}")
    return elapsed / max(n, 1) * 1e6


async def main(args: argparse.Namespace) -> None:
    names = [args.only] if args.only else list(ROUTES)
    n = args.n if args.n is not None else (500 if args.quick else 20_000)
    async with app.lifespan():
        results = {name: await run(name, n) for name in names}
    if args.only:
        print(f"{args.only}: {results[args.only]:.1f} us/request (N={n:,})")
        return
    reference = results["none"]
    print(f"per-request cost by parameters (in-process, one at a time, N={n:,})")
    for name, micros in results.items():
        print(f"{name:<10}{micros:>10.1f} us{micros / reference:>8.2f}x no-params")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=list(ROUTES))
    parser.add_argument("-n", type=int, default=None)
    asyncio.run(main(parser.parse_args()))
