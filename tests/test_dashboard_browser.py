"""The dashboard in real headless Chromium (Debian's chromium + chromium-driver, Selenium),
served by a real uvicorn, on a SQLite queue run by a real (embedded) worker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from qakeapi.queued_tasks import QueuedTasks, QueueSettings
from qakeapi.types import TaskStatus

from ._browser import By, chromium, wait_for
from ._dashboard_app import SECRET, TOKEN, build
from ._server import serve

pytestmark = pytest.mark.slow


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    app, tasks = build(tmp_path)
    with serve(app) as url:
        yield url, tasks


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


def add(url: str, name: str, *args: Any, **kwargs: Any) -> str:
    response = httpx.post(f"{url}/add", json={"name": name, "args": args, "kwargs": kwargs})
    response.raise_for_status()
    return str(response.json()["id"])


def record(db: str, task_id: str) -> dict[str, Any]:
    """The record in storage, read by a queue of its own (not through the dashboard)."""

    async def read() -> dict[str, Any]:
        async with QueuedTasks(settings=QueueSettings(url=db, embedded_worker=False)) as q:
            found = await q.get(task_id)
            assert found is not None
            return found.to_dict()
    return anyio.run(read)


def sign_in(driver: Any, url: str, root: str = "/dash") -> None:
    driver.get(f"{url}{root}/")
    field = driver.find_element(By.NAME, "token")
    field.send_keys(TOKEN)
    field.submit()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".tiles"), "the overview")


def text(driver: Any, selector: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, selector).text)


def test_live_progress_and_logs_without_reload(site: tuple[str, Any], browser: Any,
                                               tmp_path: Path) -> None:
    url, _tasks = site
    sign_in(browser, url)
    task_id = add(url, "stepper", 4, password=SECRET)
    (tmp_path / "step-1").touch()
    browser.get(f"{url}/dash/task/{task_id}")
    browser.execute_script("window.__sameDocument = true")
    wait_for(lambda: text(browser, ".progress .label") == "25%", "progress 25%")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "ol.logs li")) == 1, "1 line")
    assert SECRET not in browser.page_source and "***" in browser.page_source
    (tmp_path / "step-2").touch()
    wait_for(lambda: text(browser, ".progress .label") == "50%", "progress 50%")
    lines = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "ol.logs li")[1:], "line 2")
    assert "finished step 2" in lines[0].text
    assert browser.execute_script("return window.__sameDocument") is True
    wait_for(lambda: "current" in text(browser, '[data-live="context"]'), "the context tree")
    assert "s-running" in browser.find_element(By.CSS_SELECTOR, "h1 .badge").get_attribute(
        "class")
    browser.save_screenshot(str(tmp_path / "task-running.png"))
    for _ in range(3):
        add(url, "flaky")
        add(url, "sleeper", 0)
    background = httpx.post(f"{url}/background", json={"seconds": 30}).json()["id"]
    browser.get(f"{url}/dash/")
    wait_for(lambda: text(browser, '[data-live="count-failed"]') == "3", "3 failures")
    assert background[:12] in browser.page_source, "the in-process task is shown"
    assert task_id[:12] in text(browser, ".workers"), "the worker runs the stepper"
    browser.execute_script("window.__sameDocument = true")
    browser.save_screenshot(str(tmp_path / "overview.png"))
    for step in (3, 4):
        (tmp_path / f"step-{step}").touch()
    wait_for(lambda: text(browser, '[data-live="count-succeeded"]') == "4", "4 successes")
    assert browser.execute_script("return window.__sameDocument") is True
    browser.get(f"{url}/dash/task/{task_id}")
    assert text(browser, "h1 .badge") == "succeeded"


def test_cancel_and_retry_from_the_page(site: tuple[str, Any], browser: Any,
                                        tmp_path: Path) -> None:
    url, _tasks = site
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    sign_in(browser, url)
    sleeping = add(url, "sleeper", 60)
    wait_for(lambda: record(db, sleeping)["status"] == "running", "the sleeper to run")
    browser.get(f"{url}/dash/task/{sleeping}")
    browser.find_element(By.CSS_SELECTOR, '[data-action="cancel"]').click()
    browser.save_screenshot(str(tmp_path / "confirm-cancel.png"))
    browser.find_element(By.CSS_SELECTOR, "button[data-confirm]").click()
    wait_for(lambda: record(db, sleeping)["status"] == TaskStatus.CANCELLED.value,
             "the sleeper to be cancelled in storage")
    wait_for(lambda: text(browser, "h1 .badge") == "cancelled", "the page to show it")

    failing = add(url, "flaky")
    wait_for(lambda: record(db, failing)["status"] == "failed", "flaky to fail")
    browser.get(f"{url}/dash/task/{failing}")
    assert "the gate is closed" in text(browser, ".card.error")
    browser.save_screenshot(str(tmp_path / "task-failed.png"))
    (tmp_path / "gate").touch()
    browser.find_element(By.CSS_SELECTOR, '[data-action="retry"]').click()
    browser.find_element(By.CSS_SELECTOR, "button[data-confirm]").click()
    wait_for(lambda: record(db, failing)["status"] == "succeeded", "the retry to succeed")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "h1 .badge.s-succeeded")
             or browser.refresh(), "the page to show success")
    browser.get(f"{url}/dash/tasks")
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.grid tbody tr")) == 2
    browser.save_screenshot(str(tmp_path / "task-list.png"))


def test_read_only_hides_actions_and_tokenless_requests_are_refused(
        site: tuple[str, Any], browser: Any, tmp_path: Path) -> None:
    url, _tasks = site
    failing = add(url, "flaky")
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    wait_for(lambda: record(db, failing)["status"] == "failed", "flaky to fail")
    browser.get(f"{url}/dash/task/{failing}")
    assert browser.find_elements(By.NAME, "token"), "a sign-in form, not the task"
    assert failing not in browser.page_source
    assert httpx.get(f"{url}/dash/task/{failing}").status_code == 401
    sign_in(browser, url, "/ro")
    browser.get(f"{url}/ro/task/{failing}")
    assert "the gate is closed" in browser.page_source
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-action]")
    browser.get(f"{url}/ro/tasks")
    assert not browser.find_elements(By.CSS_SELECTOR, ".button.danger")
    browser.save_screenshot(str(tmp_path / "read-only.png"))


def test_pages_read_without_javascript(site: tuple[str, Any], tmp_path: Path) -> None:
    url, _tasks = site
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    failing = add(url, "flaky")
    wait_for(lambda: record(db, failing)["status"] == "failed", "flaky to fail")
    driver = chromium(javascript=False)
    try:
        sign_in(driver, url)
        time.sleep(1.5)  # with scripts on, the live stream would be open by now
        dot = driver.find_element(By.CSS_SELECTOR, ".live-dot").get_attribute("class")
        assert "on" not in dot.split(), "the page's script ran"
        assert text(driver, '[data-live="count-failed"]') == "1"
        driver.find_element(By.LINK_TEXT, "Tasks").click()
        driver.find_element(By.CSS_SELECTOR, "table.grid a.id").click()
        assert "the gate is closed" in text(driver, ".card.error")
        driver.find_element(By.CSS_SELECTOR, '[data-action="retry"]').click()
        (tmp_path / "gate").touch()
        driver.find_element(By.CSS_SELECTOR, "button[data-confirm]").click()
        wait_for(lambda: record(db, failing)["status"] == "succeeded", "the retry")
        driver.save_screenshot(str(tmp_path / "no-javascript.png"))
    finally:
        driver.quit()
