"""/docs in real headless Chromium (Debian's chromium + chromium-driver, Selenium) against a
real uvicorn: Swagger UI loads from the app alone, renders every operation of the document,
and "Try it out" calls the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._browser import By, chromium, wait_for
from ._server import serve
from .test_openapi import build_app

pytestmark = pytest.mark.slow


@pytest.fixture
def site() -> Iterator[str]:
    with serve(build_app()) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = chromium(browser_logs=True)
    try:
        yield driver
    finally:
        driver.quit()


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
