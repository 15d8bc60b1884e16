"""The benchmark scripts run (small N) and print their ratio lines. No timing assertions."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ._docs import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("script", "expected"), [
    ("inprocess.py", ["ratio async:", "ratio sync:", "of the unbounded floor",
                      "of the bounded floor", "peak RSS qakeapi async run:"]),
    ("http_requests.py", ["in-process", "uvicorn", "ratio target", "JSON-body ratio target"]),
    ("param_paths.py", ["per-request cost by parameters", "scalars", "json", "depends"]),
    ("fastapi_tasks.py", ["fastapi", "in-process", "uvicorn", "ratio target"]),
    ("sqlite_queue.py", ["drain, 1 worker process", "huey", "idle latency",
                         "write cost of the dashboard indexes and delete trigger"]),
    ("redis_peers.py", ["qakeapi", "end-to-end", "idle latency"]),
    ("fanout.py", ["sqlite: cancel parent", "redis: parent succeeds"]),
    ("dashboard.py", ["sqlite: 5,000 tasks", "redis: 5,000 tasks", "task list, page 50 (cursor)",
                      "rare name, first page", "metrics scrape", "empty queue"]),
    ("dashboard_live_cpu.py", ["sqlite: worker CPU draining 1,000", "redis: worker CPU",
                               "ratio page/none", "the amplified pages read storage",
                               "from the amplified pages' runs: one page adds at most"]),
    ("tracing.py", ["opentelemetry not imported", "inside a request span"]),
])
def test_benchmark_quick_run(script: str, expected: list[str]) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    for line in expected:
        assert line in result.stdout, result.stdout
