"""The dashboard's task list pages by cursor (real uvicorn, SQLite and Redis queues): Older
links walk the whole list once, Newer links walk back, filters stay on every link, and the
cursor in a URL holds a position only — no argument, result or name of any task."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from qakeapi.constants import DASHBOARD_PAGE_SIZE
from qakeapi.dashboard import dashboard
from qakeapi.queued_tasks import QueuedTasks
from qakeapi.queued_tasks.backends import open_storage
from qakeapi.types import TaskRecord

from ._redis import redis_queue_url
from ._server import serve

TOKEN = "test-dashboard-token"
AUTH = {"X-Dashboard-Token": TOKEN}
COUNT = DASHBOARD_PAGE_SIZE * 2 + 17
T0 = 1_700_000_000.0


@pytest.fixture(params=["sqlite", "redis"])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "redis":
        with redis_queue_url() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'queue.db'}"


def fill(url: str) -> None:
    async def store() -> None:
        storage = open_storage(url)
        await storage.connect()
        try:
            await storage.enqueue([
                TaskRecord(id=f"task-{i:04d}", name="jobs:rare" if i % 10 == 0 else "jobs:bulk",
                           args=["secret-arg"], kwargs={"token": "secret-kwarg"},
                           created_at=T0 + i) for i in range(COUNT)])
        finally:
            await storage.close()
    anyio.run(store)


def ids_and_links(page: str) -> tuple[list[str], dict[str, str]]:
    ids = re.findall(r'href="[^"]*/task/(task-\d+)"', page)
    links = {label: html.unescape(href) for href, label in
             re.findall(r'<a class="button"(?: rel="\w+")? href="([^"]+)">(\w+)</a>', page)}
    return ids, links


def walk(client: httpx.Client, start: str, label: str) -> tuple[list[str], list[str], str]:
    """Follow ``label`` links from ``start``: the ids listed, the URLs visited, the last."""
    ids, urls, url = [], [start], start
    while True:
        response = client.get(url)
        assert response.status_code == 200, response.text
        page_ids, links = ids_and_links(response.text)
        ids += page_ids
        if label not in links:
            return ids, urls, url
        url = links[label]
        urls.append(url)


def test_older_and_newer_links_walk_the_list(queue_url: str) -> None:
    fill(queue_url)
    app = dashboard(QueuedTasks(queue_url, embedded_worker=False), auth=TOKEN)
    newest_first = [f"task-{i:04d}" for i in range(COUNT - 1, -1, -1)]
    with serve(app) as site, httpx.Client(base_url=f"{site}/", headers=AUTH) as client:
        ids, urls, last = walk(client, "/tasks", "Older")
        assert ids == newest_first
        assert len(urls) == 3
        for visited in urls:
            assert "secret" not in visited and "jobs" not in visited and "task-" not in visited
        back, _, top = walk(client, last, "Newer")
        size = DASHBOARD_PAGE_SIZE
        assert back == newest_first[2 * size:] + newest_first[size:2 * size] + newest_first[:size]
        assert ids_and_links(client.get(top).text)[0] == newest_first[:DASHBOARD_PAGE_SIZE]
        assert "Newest" not in ids_and_links(client.get(top).text)[1]

        rare, rare_urls, _ = walk(client, "/tasks?name=jobs%3Arare&status=pending", "Older")
        assert rare == [i for i in newest_first if int(i[5:]) % 10 == 0]
        assert all("name=jobs%3Arare" in u and "status=pending" in u for u in rare_urls[1:])
        cursor = re.search(r"cursor=([^&]+)", urls[1])
        assert cursor is not None
        refused = client.get(f"/tasks?name=jobs%3Arare&cursor={cursor.group(1)}")
        assert refused.status_code == 400 and "other filters" in refused.text
        assert client.get("/tasks?name=" + "x" * 600).status_code == 400
