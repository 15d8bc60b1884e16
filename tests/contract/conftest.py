"""The storage under test: one connected, empty storage per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qakeapi.queued_tasks.backends import QueueStorage, open_storage

BACKENDS = ["memory", "sqlite"]


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[QueueStorage]:
    url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path}/queue.db"}[request.param]
    store = open_storage(url)
    await store.connect()
    try:
        yield store
    finally:
        await store.close()
