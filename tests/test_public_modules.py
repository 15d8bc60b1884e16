"""Which modules are public: the seeds' import paths and the documented API. Everything else
under qakeapi/ is private (``_name.py``), so a new internal module must be named that way."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import qakeapi

PUBLIC_MODULES = (
    "qakeapi",
    "qakeapi.app",
    "qakeapi.cli",
    "qakeapi.constants",
    "qakeapi.core.background",
    "qakeapi.dashboard",
    "qakeapi.dependencies",
    "qakeapi.events",
    "qakeapi.exceptions",
    "qakeapi.http_limits",
    "qakeapi.metrics",
    "qakeapi.openapi",
    "qakeapi.params",
    "qakeapi.queued_tasks",
    "qakeapi.queued_tasks.backends",
    "qakeapi.ratelimit",
    "qakeapi.requests",
    "qakeapi.responses",
    "qakeapi.routing",
    "qakeapi.server",
    "qakeapi.tasks_asgi",
    "qakeapi.testing",
    "qakeapi.types",
    "qakeapi.websockets",
)
"""``qakeapi.server`` is public: docs/security.md has uvicorn load
``qakeapi.server:HeaderTimeoutH11Protocol``."""

ROOT = Path(qakeapi.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_module_exports_what_it_lists(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists names it does not define: {missing}"


def test_every_module_is_public_or_private() -> None:
    unlisted = []
    for name, path in sorted(_modules().items()):
        last = name.rpartition(".")[2]
        if last.startswith("_") or path.name == "__main__.py" or name in PUBLIC_MODULES:
            continue
        if path.name == "__init__.py":
            module = importlib.import_module(name)
            own = {n for n, v in vars(module).items()
                   if not n.startswith("_") and getattr(v, "__name__", "") != f"{name}.{n}"}
            assert own <= {"annotations"}, f"package {name} defines public names: {own}"
            continue
        unlisted.append(name)
    assert not unlisted, (
        f"modules neither public (PUBLIC_MODULES) nor private (_name.py): {unlisted}")


def test_private_modules_hold_no_documented_import_path() -> None:
    docs = [ROOT.parent / "README.md", *sorted((ROOT.parent / "docs").glob("*.md"))]
    private = [name for name in _modules() if any(
        part.startswith("_") and not part.startswith("__") for part in name.split("."))]
    for page in docs:
        text = page.read_text()
        for name in private:
            assert f"{name} import" not in text and f"{name}:" not in text, (page, name)
