"""benchmarks/ratelimit.py runs at a tiny size and prints its ratio lines. No timing
assertions."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ._docs import ROOT

pytestmark = pytest.mark.slow


def test_ratelimit_benchmark_quick_run() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ratelimit.py"),
                             "--quick"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    for line in ["no limit (reference)", "middleware, no limit applies", "memory: @rate_limit",
                 "sqlite: middleware", "ratio"]:
        assert line in result.stdout, result.stdout
