"""Every example in docs/queued-tasks.md runs — the seed's patterns among them.

Seed blocks run in a namespace holding ``router = Router()`` (included in a fresh app) and
small real fakes for the helpers they leave undefined; earlier imports of the guide stay in
scope, as in a module that reads top to bottom.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from qakeapi import Inject, QakeAPI, Router, TaskStatus
from qakeapi.queued_tasks import (
    QueuedTasks,
    QueueSettings,
    get_context,
    getLogger,
    set_context,
)
from qakeapi.testing import TestClient

from ._docs import python_blocks

BLOCKS = python_blocks("docs/queued-tasks.md")


def block(marker: str) -> str:
    [found] = [b for b in BLOCKS if marker in b]
    return found


class User:
    def __init__(self, user_id: int) -> None:
        self.id = user_id
        self.email = f"user{user_id}@example.com"


class Image:
    def __init__(self, image_id: int) -> None:
        self.id = image_id


processed: list[Any] = []


async def process_image(image_id: int, user_id: int) -> dict[str, int]:
    processed.append(image_id)
    return {"image": image_id, "user": user_id}


def namespace() -> dict[str, Any]:
    return {
        "__name__": "docs_queued_tasks",
        "router": Router(),
        "get_user": User,
        "get_user_images": lambda user_id: [Image(1), Image(2), Image(3)],
        "process_image": process_image,
        "load_dataset": lambda dataset_id: list(range(dataset_id)),
        "process_data": lambda data: {"rows": len(data)} if isinstance(data, list) else data,
        "save_results": lambda result: None,
        "set_context": set_context,
        "get_context": get_context,
        "getLogger": getLogger,
        "Inject": Inject,
        "QueuedTasks": QueuedTasks,
    }


def run_app(ns: dict[str, Any], settings: QueueSettings | None = None) -> tuple[QakeAPI, Any]:
    app = QakeAPI()
    if settings is not None:
        app.queued_tasks = QueuedTasks(settings=settings)
        app.container.register(QueuedTasks, app.queued_tasks)
    app.include_router(ns["router"])
    return app, app.queued_tasks


def wait_all_done(client: TestClient, tasks: Any, expected: int) -> list[Any]:
    deadline = time.monotonic() + 10
    while True:
        records = client.portal.call(tasks.list)
        done = [r for r in records if r.is_terminal]
        if len(done) >= expected:
            return records
        assert time.monotonic() < deadline, f"tasks did not finish: {records}"
        time.sleep(0.02)


def exercise(ns: dict[str, Any], requests: list[tuple[str, Any]], expected_tasks: int,
             settings: QueueSettings | None = None) -> list[Any]:
    app, tasks = run_app(ns, settings)
    with TestClient(app) as client:
        for path, body in requests:
            response = client.post(path, json=body) if body is not None else client.post(path)
            assert response.status_code == 200, response.text
        return wait_all_done(client, tasks, expected_tasks)


def test_pattern_simple_background_job() -> None:
    ns = namespace()
    exec(block("Fire and forget"), ns)
    records = exercise(ns, [("/users/5/notify?message=hello", None)], 1)
    [record] = records
    assert record.status is TaskStatus.SUCCEEDED
    assert record.result == {"sent": True, "recipient": "user5@example.com"}
    assert record.args == ["user5@example.com", "Notification", "hello"]


def test_pattern_dependencies() -> None:
    ns = namespace()
    exec(block("This waits for process_task"), ns)
    records = exercise(ns, [("/orders", {"id": 12})], 2)
    by_name = {r.name.split(":")[1]: r for r in records}
    process, confirm = by_name["process_order"], by_name["send_confirmation"]
    assert confirm.parents == (process.id,)
    assert confirm.started_at is not None and process.finished_at is not None
    assert confirm.started_at >= process.finished_at
    assert confirm.result == {"confirmation_sent": True}


def test_pattern_parallel_processing() -> None:
    ns = namespace()
    exec(block("Process all images in parallel"), ns)
    processed.clear()
    records = exercise(ns, [("/users/9/process-gallery", None)], 3)
    assert sorted(processed) == [1, 2, 3]
    assert all(r.status is TaskStatus.SUCCEEDED for r in records)


def test_progress_context_and_error_handling() -> None:
    ns = namespace()
    exec(block("def process_dataset"), ns)
    exec(block("def robust_task"), ns)

    @ns["router"].post("/datasets/{dataset_id}")
    async def start(dataset_id: int) -> dict[str, bool]:
        tasks = app_holder["app"].queued_tasks
        tasks.add_task(ns["process_dataset"], dataset_id)
        tasks.add_task(ns["robust_task"], dataset_id)
        return {"ok": True}

    app_holder: dict[str, Any] = {}
    app, tasks = run_app(ns)
    app_holder["app"] = app
    with TestClient(app) as client:
        client.post("/datasets/4")
        records = wait_all_done(client, tasks, 2)
    by_name = {r.name.split(":")[1]: r for r in records}
    dataset = by_name["process_dataset"]
    assert dataset.context == {"dataset": {"id": 4}, "progress": 100, "stage": "saving"}
    robust = by_name["robust_task"]
    assert robust.context == {"data": {"id": 4}}
    assert [line.split(": ", 1)[1] for line in robust.logs] == [
        "Starting task for 4", "Task completed successfully"]


class APIRateLimitError(Exception):
    pass


class APIAuthError(Exception):
    pass


class ThirdPartyAPI:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.script: list[Exception | None] = []

    async def send(self, data: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(data["kind"])
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        return {"sent": data["kind"]}


def test_retried_versus_not_retried_errors() -> None:
    ns = namespace()
    api = ThirdPartyAPI()
    ns.update(third_party_api=api, APIRateLimitError=APIRateLimitError,
              APIAuthError=APIAuthError)
    exec(block("def api_task"), ns)

    @ns["router"].post("/send/{kind}")
    async def send(kind: str) -> dict[str, bool]:
        holder["app"].queued_tasks.add_task(ns["api_task"], {"kind": kind})
        return {"ok": True}

    holder: dict[str, Any] = {}
    settings = QueueSettings(retry_base_delay=0.01, retry_max_delay=0.02)
    app, tasks = run_app(ns, settings)
    holder["app"] = app
    tasks.register(ns["api_task"], no_retry_on=[APIAuthError])
    api.script = [APIRateLimitError("slow down"), None]
    with TestClient(app) as client:
        client.post("/send/rate")
        [rate] = wait_all_done(client, tasks, 1)
        api.script = [APIAuthError("bad key")]
        client.post("/send/auth")
        records = wait_all_done(client, tasks, 2)
    auth = next(r for r in records if r.id != rate.id)
    assert (rate.status, rate.attempts) == (TaskStatus.SUCCEEDED, 2)
    assert (auth.status, auth.attempts, auth.context) == (TaskStatus.FAILED, 1,
                                                          {"auth_failed": True})


def test_best_practice_functions_run() -> None:
    ns = namespace()
    sent: list[Any] = []
    ns["send_email"] = lambda *args: sent.append(args) or {"sent": True}
    exec(block("Single responsibility"), ns)

    async def main() -> None:
        from qakeapi.queued_tasks import QueuedTasks

        async with QueuedTasks("memory://") as tasks:
            assert await tasks.add_task(ns["send_welcome_email"], "a@b.c").result(5) == {
                "sent": True}

    anyio.run(main)
    assert sent == [("a@b.c", "welcome_template")]


def test_configuration_block_is_read_from_the_environment() -> None:
    from ._docs import ROOT

    guide = (ROOT / "docs/queued-tasks.md").read_text(encoding="utf-8")
    bash = guide.split("```bash\n", 1)[1].split("```", 1)[0]
    env = {}
    for line in bash.splitlines():
        name, _, rest = line.partition("=")
        env[name.strip()] = rest.split("#", 1)[0].strip()
    settings = QueueSettings.from_env(env)
    assert (settings.max_workers, settings.task_timeout, settings.max_retries) == (4, 300.0, 3)


def test_options_example() -> None:
    ns: dict[str, Any] = {"__name__": "docs_options"}
    exec(block("def call_partner"), ns)
    with TestClient(ns["app"]) as client:
        task_id = client.post("/partners").json()["task_id"]
        tasks = ns["app"].queued_tasks
        record = client.portal.call(tasks.get, task_id)
        assert (record.priority, record.max_retries, record.timeout) == (10, 5, 30)
        records = client.portal.call(tasks.list)
        digest = next(r for r in records if r.name.endswith("build_digest"))
        assert digest.unique_key == "digest-7" and digest.run_at is not None


def test_waiting_example() -> None:
    exec(block("async def main"), {"__name__": "docs_waiting"})


def test_retry_example() -> None:
    ns: dict[str, Any] = {"__name__": "docs_retry"}
    exec(block("def charge"), ns)
    assert anyio.run(ns["charge"], 3, True) == "charged 3"
    with pytest.raises(ns["NoRetry"]):
        anyio.run(ns["charge"], 3, False)
    registered = ns["tasks"].registry.for_function(ns["sync_account"])
    assert registered.options.no_retry_on == (ns["APIAuthError"],)


def test_events_example() -> None:
    ns: dict[str, Any] = {"__name__": "docs_events"}
    exec(block('@app.on("task:failed")'), ns)
    from qakeapi.types import TaskErrorInfo, TaskRecord

    record = TaskRecord(id="1", name="m:f", error=TaskErrorInfo("E", "boom"))
    anyio.run(ns["app"].emit, "task:failed", record)
    assert ns["failures"] == ["m:f failed: boom"]


@pytest.mark.anyio
async def test_before_store_hook_adds_the_tenant() -> None:
    ns = namespace()
    exec(block("def add_tenant"), ns)
    ns["tenant_id"].set(42)
    async with ns["tasks"] as tasks:
        ref = tasks.add_task(ns["send_report"], 3)
        assert await ref.result(10) == {"report": 3, "tenant": 42}
