"""The storage under test: one connected, empty storage per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from qakeapi.queued_tasks.backends import QueueStorage, open_storage

from .._poison import POISONS, Poison
from .._redis import redis_queue_url

BACKENDS = ["memory", "sqlite", "redis"]


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[QueueStorage]:
    with ExitStack() as stack:
        if request.param == "redis":
            url = stack.enter_context(redis_queue_url())
        else:
            url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path}/queue.db"}[
                request.param]
        store = open_storage(url)
        await store.connect()
        try:
            yield store
        finally:
            await store.close()


@pytest.fixture(params=sorted(POISONS))
def poison(request: pytest.FixtureRequest) -> Poison:
    return POISONS[request.param]
