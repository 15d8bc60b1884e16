"""Importing on demand: an app from a ``module:attribute`` string (for the CLI), and an
optional driver only when a URL chooses it, with the extra that installs it."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from .exceptions import ConfigurationError, QakeAPIError

__all__ = ["AppImportError", "load_app", "require_extra"]


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


def require_extra(module: str, extra: str, needed_by: str) -> None:
    """Import ``module`` (a driver) or raise ``ConfigurationError``: ``needed_by`` (what
    chose it, e.g. a URL), then the ``pip install`` of the ``extra`` that brings it."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(
            f'{needed_by}: pip install "qakeapi[{extra}]"') from exc
