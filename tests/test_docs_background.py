"""Every example in docs/background-tasks.md runs (the seed's examples among them).

Each block runs in its own namespace holding ``app = QakeAPI()``, the module's import of
``add_background_task`` (as the first example shows), and small real fakes for the helpers
the examples call but leave undefined (``process_heavy_task``, ``email_service``...).
``asyncio.sleep`` there is shortened so the one-second "email" doesn't slow the suite.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from qakeapi import BackgroundTaskManager, QakeAPI
from qakeapi.core.background import add_background_task
from qakeapi.testing import TestClient

from ._docs import python_blocks

BLOCKS = python_blocks("docs/background-tasks.md")


class FastAsyncio:
    """``asyncio`` with a shortened ``sleep``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.01))


def namespace(calls: list[tuple[str, Any]]) -> dict[str, Any]:
    def record(name: str) -> Any:
        async def fake(*args: Any) -> None:
            calls.append((name, args))
        return fake

    class Service:
        def __init__(self, name: str) -> None:
            self.name = name

        async def send(self, *args: Any) -> None:
            calls.append((f"{self.name}.send", args))

        async def sync(self, *args: Any) -> None:
            calls.append((f"{self.name}.sync", args))

    class User:
        email = "user@example.com"

    async def get_user(user_id: int) -> User:
        return User()

    def process_data(data: Any) -> Any:
        calls.append(("process_data", (data,)))
        return data

    async def async_process_data(data: Any) -> None:
        calls.append(("process_data", (data,)))

    async def save_uploaded_file(request: Any) -> str:
        return "/tmp/upload.bin"

    return {
        "app": QakeAPI(),
        "add_background_task": add_background_task,
        "notify_user": record("notify_user"),
        "asyncio": FastAsyncio(),
        "logger": logging.getLogger("docs"),
        "process_heavy_task": record("process_heavy_task"),
        "process_item": record("process_item"),
        "update_cache": record("update_cache"),
        "get_user": get_user,
        "email_service": Service("email_service"),
        "external_api": Service("external_api"),
        "process_data": process_data,
        "save_to_file": lambda report: calls.append(("save_to_file", (report,))),
        "analyze_file": lambda path: calls.append(("analyze_file", (path,))) or {"ok": 1},
        "save_results": lambda result: calls.append(("save_results", (result,))),
        "save_uploaded_file": save_uploaded_file,
        "_async_process_data": async_process_data,
    }


# (marker text in the block, request to make, calls that must have happened)
SCENARIOS: list[tuple[str, tuple[str, str, Any], list[str]]] = [
    ("process_heavy_task, data", ("post", "/process", {"x": 1}), ["process_heavy_task"]),
    ("def send_email", ("post", "/users", {"email": "a@b.c"}), ["printed:Email sent to a@b.c"]),
    ("def generate_report", ("post", "/reports", {"rows": 2}), ["process_data", "save_to_file"]),
    ("def process_order", ("post", "/orders", {"id": 1, "user_id": 2, "items": ["a", "b"]}),
     ["process_item", "process_item", "notify_user"]),
    ("def calculate_result", ("post", "/calculate", [1, 2, 3]), []),
    ("def risky_task", ("post", "/process", {"x": 1}), ["process_data"]),
    ("send_notification_email", ("post", "/notify", {"user_id": 1, "message": "hi"}),
     ["email_service.send"]),
    ("process_uploaded_file", ("post", "/upload", {}), ["analyze_file", "save_results"]),
    ("sync_with_external_api", ("post", "/sync", {"a": 1}),
     ["external_api.sync", "update_cache"]),
]


def test_every_block_has_a_scenario() -> None:
    covered = {marker for marker, _, _ in SCENARIOS}
    for block in BLOCKS:
        if "@app.post" in block and "QakeAPI()" not in block:
            assert any(marker in block for marker in covered), block[:200]


def wait_for(calls: list[tuple[str, Any]], expected: list[str]) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        names = [name for name, _ in calls]
        if all(names.count(n) >= expected.count(n) for n in expected):
            return
        time.sleep(0.01)
    raise AssertionError(f"expected calls {expected}, got {calls}")


@pytest.mark.parametrize(("marker", "request_", "expected"), SCENARIOS,
                         ids=[s[0] for s in SCENARIOS])
def test_seed_example_runs(marker: str, request_: tuple[str, str, Any], expected: list[str],
                           capsys: pytest.CaptureFixture[str]) -> None:
    [block] = [b for b in BLOCKS if marker in b]
    calls: list[tuple[str, Any]] = []
    ns = namespace(calls)
    if "def risky_task" in block:
        ns["process_data"] = ns["_async_process_data"]
    exec(compile(block, f"docs/background-tasks.md:{marker}", "exec"), ns)
    method, path, body = request_
    with TestClient(ns["app"]) as client:
        response = getattr(client, method)(path, json=body)
        assert response.status_code == 200, response.text
        if "calculate_result" in block:
            assert response.json() == {"result": {"result": 6}}
        for name in expected:
            if name.startswith("printed:"):
                deadline = time.monotonic() + 5
                while name[8:] not in capsys.readouterr().out:
                    assert time.monotonic() < deadline, "the email task did not run"
                    time.sleep(0.01)
        wait_for(calls, [n for n in expected if not n.startswith("printed:")])


def test_lifecycle_example() -> None:
    ns: dict[str, Any] = {}
    block = next(b for b in BLOCKS if "def start_resize" in b)
    exec(compile(block, "docs/background-tasks.md:lifecycle", "exec"), ns)
    with TestClient(ns["app"]) as client:
        task_id = client.post("/images/7").json()["task_id"]
        assert client.get(f"/tasks/{task_id}").json() == {
            "status": "succeeded", "result": "image 7 resized within 5 s"}
        assert client.post("/webhook").json() == {"error": "https://example.invalid is down"}


def test_configure_example() -> None:
    BackgroundTaskManager.reset()
    block = next(b for b in BLOCKS if ".configure(" in b)
    exec(compile(block, "docs/background-tasks.md:configure", "exec"), {})
    settings = BackgroundTaskManager().settings
    assert (settings.max_concurrency, settings.retain_finished, settings.shutdown_grace) == (
        64, 5_000, 5)
    BackgroundTaskManager.reset()


def test_no_retry_on_example() -> None:
    BackgroundTaskManager.reset()
    ns: dict[str, Any] = {}
    block = next(b for b in BLOCKS if "no_retry_on=(AuthError,)" in b)
    exec(compile(block, "docs/background-tasks.md:no_retry_on", "exec"), ns)
    with TestClient(ns["app"]) as client:
        task_id = client.post("/orders/7/push").json()["task_id"]
        manager = BackgroundTaskManager()
        deadline = time.monotonic() + 5
        while not manager.tasks[task_id].is_terminal:
            assert time.monotonic() < deadline, "the task did not end"
            time.sleep(0.01)
        record = manager.tasks[task_id]
    assert (record.status.value, record.attempts, record.max_retries) == ("failed", 1, 5)
    assert record.error is not None and record.error.type == "AuthError"
    assert ns["calls"] == [7]
    BackgroundTaskManager.reset()
