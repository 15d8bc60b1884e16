"""What the benchmarks that start child processes share: a free local port to serve on, and
an environment in which a child imports modules from a directory (the app a benchmark
writes there)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["env", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env(directory: Path, **extra: str) -> dict[str, str]:
    """This process's environment with ``directory`` first on ``PYTHONPATH``, plus ``extra``."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(directory),
                                                        os.environ.get("PYTHONPATH", "")]),
                **extra)
