"""qakeapi.testing: server errors raised by default, and a clear hint without httpx."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from qakeapi import QakeAPI
from qakeapi.testing import AsyncTestClient, TestClient

ROOT = Path(__file__).resolve().parent.parent


def test_importing_without_httpx_names_the_extra() -> None:
    code = ("import sys; sys.modules['httpx'] = None\n"
            "import qakeapi\n"  # the package itself does not need httpx
            "try:\n"
            "    import qakeapi.testing\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == 'qakeapi.testing needs httpx: pip install "qakeapi[testing]"'


def test_the_testing_extra_brings_httpx() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("httpx") for dep in project["optional-dependencies"]["testing"])
    assert not any(dep.startswith("httpx") for dep in project["dependencies"])


def failing_app() -> QakeAPI:
    app = QakeAPI()

    @app.get("/boom")
    def boom() -> None:  # a plain function: raised from its worker thread
        raise LookupError("missing row")

    return app


def test_clients_raise_server_errors_unless_told_not_to() -> None:
    with TestClient(failing_app()) as client, pytest.raises(LookupError, match="missing row"):
        client.get("/boom")
    with TestClient(failing_app(), raise_server_exceptions=False) as client:
        assert client.get("/boom").json() == {"detail": "Internal Server Error"}


@pytest.mark.anyio
async def test_async_client_raises_server_errors_unless_told_not_to() -> None:
    async with AsyncTestClient(failing_app()) as client:
        with pytest.raises(LookupError, match="missing row"):
            await client.get("/boom")
    async with AsyncTestClient(failing_app(), raise_server_exceptions=False) as client:
        assert (await client.get("/boom")).status_code == 500


def test_the_client_keeps_the_app_it_was_given() -> None:
    app = failing_app()
    assert TestClient(app).app is app and AsyncTestClient(app).app is app
