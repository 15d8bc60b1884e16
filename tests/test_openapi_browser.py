"""/docs in real headless Chromium (Debian's chromium + chromium-driver, Selenium) against a
real uvicorn: Swagger UI loads from the app alone, renders every operation of the document,
and "Try it out" calls the app."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._server import serve
from .test_openapi import build_app

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"

if not (os.path.exists(CHROMIUM) and shutil.which(DRIVER)):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs chromium and chromium-driver (.ci/run installs them)")
    pytest.skip("chromium and chromium-driver are not installed", allow_module_level=True)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def site() -> Iterator[str]:
    with serve(build_app()) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_swagger_ui_renders_every_operation_from_the_app_alone(
        site: str, browser: Any, tmp_path: Path) -> None:
    document = httpx.get(f"{site}/openapi.json").json()
    expected = {(method.upper(), path) for path, item in document["paths"].items()
                for method in item}
    browser.get(f"{site}/docs")
    rendered = """return [...document.querySelectorAll('.opblock')].map(b => [
        b.querySelector('.opblock-summary-method')?.textContent,
        b.querySelector('[data-path]')?.dataset.path])"""

    def operations() -> set[tuple[str, str]]:
        shown = {tuple(pair) for pair in browser.execute_script(rendered)}
        return shown if shown == expected else set()

    wait_for(operations, "every operation of the document")
    assert "Shop" in browser.find_element(By.CSS_SELECTOR, ".info .title").text
    assert browser.find_elements(By.CSS_SELECTOR, ".opblock.opblock-deprecated")
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(r.startswith(site) for r in resources), resources
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    browser.save_screenshot(str(tmp_path / "docs.png"))


def test_try_it_out_calls_the_app(site: str, browser: Any, tmp_path: Path) -> None:
    browser.get(f"{site}/docs#/users/list_users_users_get")
    block = wait_for(lambda: browser.find_elements(
        By.CSS_SELECTOR, "#operations-users-list_users_users_get"), "the operation")[0]
    wait_for(lambda: block.find_elements(By.CSS_SELECTOR, ".try-out__btn"),
             "the operation expanded")[0].click()
    block.find_element(By.CSS_SELECTOR, ".execute").click()
    status = wait_for(lambda: block.find_elements(
        By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status"), "a live response")[0]
    assert status.text.strip() == "200"
    body = block.find_element(By.CSS_SELECTOR, ".live-responses-table .microlight").text
    assert '"name": "ada"' in body
    browser.save_screenshot(str(tmp_path / "try-it-out.png"))
