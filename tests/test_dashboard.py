"""The dashboard over HTTP (real uvicorn, SQLite queue, embedded worker): access, CSRF,
read-only mode, bad input, search kept out of URLs, and one shared poll for every live page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from qakeapi.dashboard import DashboardApp, dashboard
from qakeapi.exceptions import ConfigurationError
from qakeapi.queued_tasks import QueuedTasks, QueueSettings

from ._dashboard_app import TOKEN, build
from ._server import serve

AUTH = {"X-Dashboard-Token": TOKEN}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    app, _tasks = build(tmp_path)
    with serve(app) as url:
        yield url, app


def add(url: str, name: str, *args: Any) -> str:
    response = httpx.post(f"{url}/add", json={"name": name, "args": args})
    response.raise_for_status()
    return str(response.json()["id"])


def status_in_storage(tmp_path: Path, task_id: str) -> str:
    async def read() -> str:
        url = f"sqlite:///{tmp_path / 'queue.db'}"
        async with QueuedTasks(settings=QueueSettings(url=url, embedded_worker=False)) as q:
            record = await q.get(task_id)
            assert record is not None
            return record.status.value
    return anyio.run(read)


def wait_status(tmp_path: Path, task_id: str, status: str) -> None:
    deadline = time.monotonic() + 20
    while status_in_storage(tmp_path, task_id) != status:
        assert time.monotonic() < deadline, f"{task_id} never became {status}"
        time.sleep(0.05)


def csrf_session(url: str, path: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=url, headers=AUTH)
    page = client.get(path)
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert match is not None
    return client, match.group(1)


def test_requests_without_the_token_are_refused(site: tuple[str, Any]) -> None:
    url, _app = site
    for path in ("/dash/", "/dash/tasks", "/dash/live", "/ro/", "/dash/task/x"):
        response = httpx.get(f"{url}{path}")
        assert response.status_code == 401, path
        assert "Overview" not in response.text
    assert httpx.get(f"{url}/dash/", headers={"X-Dashboard-Token": "wrong-token"}
                     ).status_code == 401
    assert httpx.get(f"{url}/dash/", headers={"Authorization": f"Bearer {TOKEN}"}
                     ).status_code == 200
    login = httpx.post(f"{url}/dash/login", data={"token": "wrong"})
    assert login.status_code == 401
    with httpx.Client(base_url=url) as client:
        assert client.post("/dash/login", data={"token": TOKEN}).status_code == 303
        assert client.cookies.get("qakeapi_dashboard") not in (None, TOKEN)
        assert client.get("/dash/").status_code == 200


def test_a_callable_auth_refuses_with_403(tmp_path: Path) -> None:
    tasks = QueuedTasks(f"sqlite:///{tmp_path / 'q.db'}")
    app = dashboard(tasks, auth=lambda request: request.headers.get("x-user") == "ada")
    with serve(app) as url:
        assert httpx.get(f"{url}/tasks").status_code == 403
        assert httpx.get(f"{url}/tasks", headers={"x-user": "ada"}).status_code == 200


def test_actions_need_the_csrf_token(site: tuple[str, Any], tmp_path: Path) -> None:
    url, _app = site
    task_id = add(url, "sleeper", 60)
    wait_status(tmp_path, task_id, "running")
    client, token = csrf_session(url, f"/dash/task/{task_id}/cancel")
    with closing(client):
        assert client.post(f"/dash/task/{task_id}/cancel").status_code == 403
        assert client.post(f"/dash/task/{task_id}/cancel",
                           data={"csrf": "0" * 64}).status_code == 403
        stranger = httpx.post(f"{url}/dash/task/{task_id}/cancel", headers=AUTH,
                              data={"csrf": token})
        assert stranger.status_code == 403, "a token without its cookie"
        assert status_in_storage(tmp_path, task_id) == "running"
        done = client.post(f"/dash/task/{task_id}/cancel", data={"csrf": token})
        assert done.status_code == 303
    wait_status(tmp_path, task_id, "cancelled")


def test_read_only_refuses_actions(site: tuple[str, Any], tmp_path: Path) -> None:
    url, _app = site
    task_id = add(url, "flaky")
    wait_status(tmp_path, task_id, "failed")
    client, token = csrf_session(url, "/ro/tasks")
    with closing(client):
        page = client.get(f"/ro/task/{task_id}").text
        assert "Retry" not in page and "Purge" not in client.get("/ro/tasks").text
        assert client.get(f"/ro/task/{task_id}/retry").status_code == 403
        refused = client.post(f"/ro/task/{task_id}/retry", data={"csrf": token})
        assert refused.status_code == 403
        assert client.post("/ro/purge", data={"csrf": token}).status_code == 403
    assert status_in_storage(tmp_path, task_id) == "failed"


def test_search_is_posted_and_bad_input_is_refused(site: tuple[str, Any]) -> None:
    url, _app = site
    task_id = add(url, "flaky")
    client, token = csrf_session(url, "/dash/tasks")
    with closing(client):
        found = client.post("/dash/search", data={"csrf": token, "id": task_id})
        assert found.status_code == 303
        assert found.headers["location"] == f"/dash/task/{task_id}"
        assert client.post("/dash/search", data={"id": task_id}).status_code == 403
        assert client.get("/dash/tasks?status=bogus").status_code == 400
        refused = client.get("/dash/tasks?cursor=garbage")
        assert refused.status_code == 400 and "start again from the first page" in refused.text
        assert client.get("/dash/task/no-such-task").status_code == 404
        assert client.get("/dash/task/x/explode").status_code == 404
        listed = client.get("/dash/tasks?name=flaky&status=failed")
        assert listed.status_code == 200


def test_bad_arguments_get_clear_errors(tmp_path: Path) -> None:
    tasks = QueuedTasks(f"sqlite:///{tmp_path / 'q.db'}")
    with pytest.raises(ConfigurationError, match="at least 8"):
        dashboard(tasks, auth="short")
    with pytest.raises(ConfigurationError, match="token string or a callable"):
        dashboard(tasks, auth=123)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="needs a QueuedTasks"):
        dashboard("sqlite:///x.db", auth=TOKEN)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="poll_interval"):
        dashboard(tasks, auth=TOKEN, poll_interval=0)


def _dashboard_of(app: Any, prefix: str) -> DashboardApp:
    [mount] = [r for r in app.routes if getattr(r, "path", "") == prefix]
    return mount.app  # type: ignore[no-any-return]


def test_live_pages_share_one_poll_and_idle_costs_nothing(site: tuple[str, Any]) -> None:
    url, app = site
    feed = _dashboard_of(app, "/dash").feed
    task_id = add(url, "sleeper", 0.01)
    updates: list[str] = []

    async def watch(path: str) -> None:
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as client, \
                client.stream("GET", path) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("event: update"):
                    updates.append(path)

    async def pages() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(watch, "/dash/live")
            group.start_soon(watch, f"/dash/live/task/{task_id}")
            await anyio.sleep(2.0)
            group.cancel_scope.cancel()

    before = feed.polls
    anyio.run(pages)
    polls = feed.polls - before
    assert "/dash/live" in updates and f"/dash/live/task/{task_id}" in updates
    assert 2 <= polls <= 2.0 / feed.interval + 4, polls
    deadline = time.monotonic() + 5
    while feed.pages:
        assert time.monotonic() < deadline, "streams still open"
        time.sleep(0.05)
    idle = feed.polls
    time.sleep(1.0)
    assert feed.polls == idle


def test_purge_retry_refusal_and_background_page(site: tuple[str, Any], tmp_path: Path) -> None:
    url, _app = site
    done = add(url, "sleeper", 0)
    waiting = add(url, "stepper", 1)
    wait_status(tmp_path, done, "succeeded")
    client, token = csrf_session(url, "/dash/purge")
    with closing(client):
        refused = client.post(f"/dash/task/{waiting}/retry", data={"csrf": token})
        assert refused.status_code == 409 and "failed or cancelled" in refused.text
        assert client.post("/dash/purge", data={"csrf": token}).status_code == 303
        assert client.get(f"/dash/task/{done}").status_code == 404
        assert status_in_storage(tmp_path, waiting) in ("pending", "running")
        background = httpx.post(f"{url}/background", json={"seconds": 0}).json()["id"]
        page = client.get(f"/dash/background/{background}")
        assert page.status_code == 200 and "in-process background task" in page.text
        assert client.get("/dash/background/nope").status_code == 404
    (tmp_path / "step-1").touch()
    wait_status(tmp_path, waiting, "succeeded")


def test_task_page_shows_parents_and_children(site: tuple[str, Any], tmp_path: Path) -> None:
    url, _app = site
    parent = add(url, "stepper", 1)
    response = httpx.post(f"{url}/add", json={"name": "sleeper", "args": [0],
                                              "kwargs": {"parent": parent}})
    child = str(response.json()["id"])
    with httpx.Client(base_url=url, headers=AUTH) as client:
        page = client.get(f"/dash/task/{parent}").text
        runs_before = page[page.index("Runs before"):]
        assert f"/dash/task/{child}" in runs_before and "sleeper" in runs_before
        page = client.get(f"/dash/task/{child}").text
        runs_after = page[page.index("Runs after"):page.index("Runs before")]
        assert f"/dash/task/{parent}" in runs_after
    (tmp_path / "step-1").touch()
    wait_status(tmp_path, child, "succeeded")


def test_a_live_stream_ends_by_itself_so_shutdown_is_not_held_up(
        site: tuple[str, Any]) -> None:
    url, _app = site
    lines = []
    give_up = time.monotonic() + 60
    with httpx.stream("GET", f"{url}/dash/live", headers=AUTH, timeout=30) as response:
        for line in response.iter_lines():  # returns when the server ends the response
            lines.append(line)
            assert time.monotonic() < give_up, "the stream never ends"
    assert lines[0].startswith("retry: ")
    assert any(line.startswith("event: update") for line in lines)
