"""The examples of docs/framework.md, events.md, configuration.md and operations.md run."""

from __future__ import annotations

import pytest

from qakeapi.testing import AsyncTestClient, TestClient

from ._docs import python_blocks, run_block


def test_framework_routes() -> None:
    ns = run_block("docs/framework.md", "def get_user")
    with TestClient(ns["app"]) as client:
        assert client.get("/users/3?verbose=true").json() == {"id": 3, "verbose": True}
        deleted = client.delete("/users/3")
        assert (deleted.status_code, deleted.json()) == (202, {"deleted": 3})
        assert client.post("/api/orders", json={"id": 1}).json() == {"order": {"id": 1}}
        assert client.get("/users/x").status_code == 422


def test_framework_errors() -> None:
    ns = run_block("docs/framework.md", "def user_name")
    with TestClient(ns["app"]) as client:
        assert client.get("/users/1/name").json() == {"name": "ada"}
        missing = client.get("/users/2/name")
        assert (missing.status_code, missing.json()) == (404, {"detail": "no user 2"})


def test_framework_dependencies() -> None:
    ns = run_block("docs/framework.md", "def whoami")
    with TestClient(ns["app"]) as client:
        assert client.get("/whoami", headers={"x-user": "bo"}).json() == {
            "user": "bo", "shop": "Ada's"}


def test_framework_lifespan() -> None:
    ns = run_block("docs/framework.md", "def connect")
    with TestClient(ns["app"]):
        assert ns["state"] == {"db": "connected"}
    assert ns["state"] == {"db": "closed"}


def test_framework_testing() -> None:
    run_block("docs/framework.md", "def ping")


@pytest.mark.anyio
async def test_events_page() -> None:
    ns = run_block("docs/events.md", "def alert")
    async with AsyncTestClient(ns["app"]) as client:
        response = await client.post("/orders", json={"id": 9})
    assert response.json() == {"ok": True}
    assert ns["audit"] == ["order 9"]
    from qakeapi.types import TaskRecord

    await ns["app"].emit("task:failed", TaskRecord(id="1", name="m:f"))
    assert ns["audit"][1:] == ["failed: m:f", "task:failed"]


def test_configuration_page() -> None:
    ns = run_block("docs/configuration.md", "QueueSettings(")
    assert ns["tasks"].settings.max_workers == 32
    assert ns["app"].queued_tasks._url == "sqlite:///queue.db"


def test_operations_page(capsys: pytest.CaptureFixture[str]) -> None:
    run_block("docs/operations.md", "def health")
    assert capsys.readouterr().out.strip() == "{'pending': 0, 'workers': 0}"


def test_every_docs_block_is_exercised() -> None:
    """Guard: a new python block in these pages must get a test above."""
    expected = {"docs/framework.md": 5, "docs/events.md": 1, "docs/configuration.md": 1,
                "docs/operations.md": 1}
    for path, count in expected.items():
        assert len(python_blocks(path)) == count, path


def test_security_http_limits() -> None:
    ns = run_block("docs/security.md", "RequestLimits")
    assert (ns["app"].max_body_size, ns["app"].body_timeout) == (10 * 1024 * 1024, 60.0)
    with TestClient(ns["other"]) as client:
        response = client.post("/", content=b"x" * (10 * 1024 * 1024 + 1))
    assert response.status_code == 413
