"""Loading an app from a ``module:attribute`` string, for the CLI."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from .exceptions import QakeAPIError

__all__ = ["AppImportError", "load_app"]


class AppImportError(QakeAPIError, ImportError):
    """``module:app`` could not be imported."""


def load_app(import_string: str) -> Any:
    """Import ``module:attr`` with the current directory on ``sys.path``."""
    module_name, sep, attr = import_string.partition(":")
    if not sep or not module_name or not attr:
        raise AppImportError(f"expected 'module:attribute', got {import_string!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppImportError(f"could not import module {module_name!r}: {exc}") from exc
    try:
        app = module
        for part in attr.split("."):
            app = getattr(app, part)
    except AttributeError:
        raise AppImportError(f"module {module_name!r} has no attribute {attr!r}") from None
    return app
