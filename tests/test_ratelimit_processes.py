"""Two real server processes (``qakeapi run``) of one app share a limit: through one SQLite
file, and through one Redis keyspace, the limit holds for both together."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from ._processes import env_for, stop, wait_until_serving
from ._redis import REDIS_URL, delete_prefix, require_redis
from ._server import free_port

pytestmark = pytest.mark.slow

APP = '''
import os
from qakeapi import QakeAPI
from qakeapi.ratelimit import RateLimit, RateLimitMiddleware, rate_limit

app = QakeAPI()
app.add_middleware(RateLimitMiddleware, limits=[RateLimit("4/minute", path="/mw")])


@app.get("/ping")
@rate_limit("6/minute")
async def ping():
    return {"pid": os.getpid()}


@app.get("/mw")
def mw():
    return {"pid": os.getpid()}
'''


@contextmanager
def server(directory: Path, url: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "qakeapi", "run", "rlapp:app", "--port", str(port)],
        cwd=directory, env=env_for(directory, QUEUE_URL=url, QUEUE_EMBEDDED_WORKER="0"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{base}/nothing", process, 30)
        yield base
    finally:
        stop(process, signal.SIGTERM)


def shared_by_two_servers(directory: Path, url: str) -> None:
    (directory / "rlapp.py").write_text(textwrap.dedent(APP))
    with ExitStack() as stack:
        bases = [stack.enter_context(server(directory, url)) for _ in range(2)]
        pings = [httpx.get(f"{bases[i % 2]}/ping", timeout=10) for i in range(10)]
        mws = [httpx.get(f"{bases[i % 2]}/mw", timeout=10) for i in range(6)]
    allowed = [r for r in pings if r.status_code == 200]
    assert [r.status_code for r in pings] == [200] * 6 + [429] * 4
    assert len({r.json()["pid"] for r in allowed}) == 2  # both servers answered
    assert all(int(r.headers["retry-after"]) >= 1 for r in pings[6:])
    assert [r.status_code for r in mws] == [200] * 4 + [429] * 2
    assert mws[3].headers["ratelimit-remaining"] == "0"


def test_two_servers_share_a_limit_in_one_sqlite_file(tmp_path: Path) -> None:
    shared_by_two_servers(tmp_path, f"sqlite:///{tmp_path}/tasks.db")


def test_two_servers_share_a_limit_in_one_redis(tmp_path: Path) -> None:
    require_redis()
    prefix = f"rltest-{uuid.uuid4().hex[:12]}"
    try:
        shared_by_two_servers(tmp_path, f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}"
                                        f"prefix={prefix}")
    finally:
        delete_prefix(REDIS_URL, prefix)
