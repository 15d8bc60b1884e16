"""Top-level test configuration: anyio on asyncio for every async test; ``queue_url``
runs a test on each durable backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._redis import redis_queue_url


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "redis"])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh queue URL on each durable backend (a SQLite file; a Redis key prefix)."""
    if request.param == "redis":
        with redis_queue_url() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path}/queue.db"
