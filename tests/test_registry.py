"""What a worker will run: a stored name never reaches code outside the application.

Hostile rows are written with the real storage into a real SQLite file and real Redis keys
and run by a real ``qakeapi queue start`` process; a marker file proves nothing ran.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from qakeapi.exceptions import ConfigurationError, TaskNotRegistered
from qakeapi.queued_tasks import QueuedTasks, QueueSettings
from qakeapi.queued_tasks._registry import TaskRegistry
from qakeapi.queued_tasks.backends import open_storage
from qakeapi.types import TaskRecord, TaskStatus

from . import _queue_tasks as t
from ._processes import env_for, stop
from ._redis import redis_queue_url
from .test_queue import fast_settings

NOT_OURS = "not a task of this application"

APP = '''
import logging
import os
from os import system
from shutil import rmtree

from qakeapi import QakeAPI

app = QakeAPI()
MARKER = os.environ["REGAPP_MARKER"]


class Job:
    def __init__(self, *args):
        open(MARKER, "a").close()

    @staticmethod
    def run(*args):
        open(MARKER, "a").close()


def legit(value):
    return {"ran": value}


aliased = legit


def __getattr__(name):
    return os.system


@app.queued_tasks.task
async def registered(value):
    return value * 2
'''

SUBMODULE = '''
import os
from regapp import legit

MARKER = os.environ["REGAPP_MARKER"]


def touch(*args):
    open(MARKER + ".legit", "a").close()
'''

BROKEN = 'raise RuntimeError("this module does not import")\n'
OUTSIDE = 'import os\nopen(os.environ["REGAPP_MARKER"], "a").close()\n\ndef run(*a): pass\n'


def hostile_names(marker: Path) -> dict[str, list[str]]:
    """Stored names an attacker could write, with the arguments that would leave a mark."""
    touch = f"touch {marker}"
    return {
        "regapp:os.system": [touch],
        "regapp:logging.os.system": [touch],
        "regapp:os.execv": ["/bin/sh", ["sh", "-c", touch]],
        "regapp:system": [touch],
        "regapp:rmtree": [str(marker.parent / "victim")],
        "regapp:Job": [],
        "regapp:Job.run": [],
        "regapp:aliased": [1],
        "regapp:__getattr__": ["x"],
        "regapp:anything_via_module_getattr": [touch],
        "regapp:__builtins__": [],
        "regapp:app": [],
        "regapp.sub:legit": [1],
        "regapp..sub:touch": [],
        ".sub:touch": [],
        "regapp.broken:run": [],
        "regoutside:run": [],
        "os:system": [touch],
        "builtins:exec": [f"open({str(marker)!r}, 'a')"],
        "qakeapi._importing:load_app": ["regoutside:run"],
        "__main__:main": [],
        "regapp:<lambda>": [],
        "regapp": [],
    }


def write_app(directory: Path) -> Path:
    package = directory / "regapp"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(APP))
    (package / "sub.py").write_text(textwrap.dedent(SUBMODULE))
    (package / "broken.py").write_text(BROKEN)
    (directory / "regoutside.py").write_text(OUTSIDE)
    (directory / "victim").mkdir()
    return directory / "marker"


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    marker = write_app(tmp_path)
    monkeypatch.setenv("REGAPP_MARKER", str(marker))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.split(".")[0] in ("regapp", "regoutside")]:
        del sys.modules[name]


def test_hostile_names_are_refused_and_import_nothing_outside(app_dir: Path) -> None:
    registry = TaskRegistry()
    registry.allow_package("regapp.main")
    marker = app_dir / "marker"
    for name in hostile_names(marker):
        with pytest.raises(TaskNotRegistered, match=NOT_OURS):
            registry.resolve(name)
    assert "regoutside" not in sys.modules
    assert not marker.exists()
    assert registry.resolve("regapp.sub:touch").name == "regapp.sub:touch"
    assert registry.resolve("regapp:legit").fn(3) == {"ran": 3}


def test_standard_library_and_qakeapi_are_never_the_app(app_dir: Path) -> None:
    registry = TaskRegistry()
    for module in ("os", "json.decoder", "qakeapi.app", "__main__", "builtins", "a..b"):
        registry.allow_package(module)
    assert registry.packages == set()
    with pytest.raises(TaskNotRegistered, match=NOT_OURS):
        registry.resolve("json.decoder:py_scanstring")


def test_strict_registry_runs_registered_functions_only(app_dir: Path) -> None:
    registry = TaskRegistry(strict=True)
    registry.allow_package("regapp")
    with pytest.raises(TaskNotRegistered, match="strict mode"):
        registry.resolve("regapp:legit")
    registry.register(t.add)
    assert registry.resolve("tests._queue_tasks:add").fn is t.add
    with pytest.raises(TypeError, match="strict mode"):
        registry.for_function(t.multiply)
    registry.register(t.echo, name="echo")
    assert registry.resolve("tests._queue_tasks:echo").fn is t.echo


def test_strict_setting_from_the_environment() -> None:
    assert QueueSettings.from_env({"QUEUE_STRICT": "1"}).strict is True
    assert QueueSettings.from_env({}).strict is False
    with pytest.raises(ConfigurationError, match="QUEUE_STRICT='maybe'"):
        QueueSettings.from_env({"QUEUE_STRICT": "maybe"})


@pytest.mark.anyio
async def test_strict_queue_refuses_unregistered_add_task(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/queue.db"
    async with QueuedTasks(url, strict=True) as tasks:
        with pytest.raises(TypeError, match="strict mode"):
            tasks.add_task(t.multiply, 2, 3)
        tasks.register(t.add)
        assert await tasks.add_task(t.add, 2, 3).result(10) == 5


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
async def test_a_task_is_stored_and_run_under_its_registered_name(backend: str,
                                                                  tmp_path: Path) -> None:
    with redis_queue_url() as redis_url:
        url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path}/queue.db",
               "redis": redis_url}[backend]
        await run_under_registered_names(url)


async def run_under_registered_names(url: str) -> None:
    async with QueuedTasks(settings=fast_settings(url), strict=True) as tasks:
        tasks.register(t.multiply, name="math.multiply")
        tasks.task(name="tests.echo")(t.echo)
        product = tasks.add_task(t.multiply, 6, 7)
        echoed = await tasks.enqueue(t.echo, "x")
        assert (await product.result(10), await echoed.result(10)) == (42, "x")
        assert [(await product.record()).name, (await echoed.record()).name] == [
            "math.multiply", "tests.echo"]
        assert tasks.registry.resolve("math.multiply").fn is t.multiply


def start_worker(directory: Path, url: str, **env: str) -> subprocess.Popen[bytes]:
    with (directory / "worker.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "qakeapi", "queue", "start", "--app", "regapp:app",
             "--url", url],
            cwd=directory, env=env_for(directory, REGAPP_MARKER=str(directory / "marker"), **env),
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


async def run_rows(directory: Path, url: str, rows: dict[str, list[object]],
                   **env: str) -> dict[str, TaskRecord]:
    """Write one row per name straight into storage; a real worker runs them all."""
    storage = open_storage(url)
    await storage.connect()
    records = [TaskRecord(id=f"row{i}-{uuid.uuid4().hex[:8]}", name=name, args=args,
                          kwargs={}, created_at=1.0, max_retries=0)
               for i, (name, args) in enumerate(rows.items())]
    worker = start_worker(directory, url, **env)
    try:
        await storage.enqueue(records)
        finished: dict[str, TaskRecord] = {}
        with anyio.fail_after(60):
            while len(finished) < len(records):
                for record in records:
                    found = await storage.get(record.id)
                    if found is not None and found.is_terminal:
                        finished[record.name] = found
                await anyio.sleep(0.1)
        return finished
    finally:
        await storage.close()
        stop(worker)


@pytest.mark.anyio
async def test_worker_fails_hostile_rows_and_runs_nothing(app_dir: Path, queue_url: str) -> None:
    marker = app_dir / "marker"
    rows: dict[str, list[object]] = dict(hostile_names(marker))
    rows["regapp:legit"] = [7]
    rows["regapp.sub:touch"] = []
    done = await run_rows(app_dir, queue_url, rows)
    assert done.pop("regapp:legit").status is TaskStatus.SUCCEEDED
    assert done.pop("regapp.sub:touch").status is TaskStatus.SUCCEEDED
    assert (app_dir / "marker.legit").exists()
    for name, record in done.items():
        assert record.status is TaskStatus.FAILED, name
        assert record.error is not None and NOT_OURS in record.error.message, name
        assert record.attempts == 1, name
    assert not marker.exists()
    assert (app_dir / "victim").is_dir()


@pytest.mark.anyio
async def test_strict_worker_runs_registered_functions_only(app_dir: Path,
                                                            queue_url: str) -> None:
    done = await run_rows(app_dir, queue_url, {"regapp:legit": [1], "regapp:registered": [21]},
                          QUEUE_STRICT="1")
    assert done["regapp:registered"].status is TaskStatus.SUCCEEDED
    refused = done["regapp:legit"]
    assert refused.status is TaskStatus.FAILED
    assert refused.error is not None and "strict mode" in refused.error.message
