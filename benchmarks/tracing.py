"""What traces cost a queued task: the tracing work of adding one task (``trace_carrier``) and
of running one attempt (``attempt_span`` entered and left), in fresh processes where
opentelemetry is not imported, imported with no tracer provider, and with the SDK's provider
(outside any span, then inside one — the real cost of tracing). The reference, measured in
the same process: encoding one task's arguments (``encode_call``), part of every ``add_task``.

    python benchmarks/tracing.py [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = '''
import sys, timeit
mode, number = sys.argv[1], int(sys.argv[2])
if mode != "absent":
    from opentelemetry import trace
if mode in ("sdk", "sdk-span"):
    from opentelemetry.sdk.trace import TracerProvider
    trace.set_tracer_provider(TracerProvider())
from qakeapi.queued_tasks._tracing import attempt_span, trace_carrier
from qakeapi.queued_tasks._serialization import encode_call
from qakeapi.types import TaskRecord

record = TaskRecord(id="0123456789abcdef012345", name="app:job")


def add_and_run():
    trace_carrier()
    with attempt_span(record, "worker-1"):
        pass


def reference():
    encode_call("app:job", (1, "a"), {"b": 2})


def best(fn):
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e9


if mode == "sdk-span":
    with trace.get_tracer("bench").start_as_current_span("request"):
        record.context = {"qakeapi.trace": trace_carrier()}
        cost = best(add_and_run)
else:
    cost = best(add_and_run)
print(f"{cost:.0f} {best(reference):.0f} {'opentelemetry' in sys.modules}")
'''

MODES = {
    "absent": "opentelemetry not imported",
    "api": "opentelemetry imported, no tracer provider",
    "sdk": "SDK tracer provider, no current span",
    "sdk-span": "SDK tracer provider, inside a request span",
}


def main(number: int) -> None:
    for mode, label in MODES.items():
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE), mode, str(number)],
                             capture_output=True, text=True, check=True, cwd=ROOT).stdout
        cost, reference, imported = out.split()
        print(f"tracing, {label}: {cost} ns per task (add + one attempt), "
              f"{int(cost) / int(reference):.2f}x of encoding its arguments ({reference} ns); "
              f"opentelemetry in sys.modules: {imported}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    main(2_000 if parser.parse_args().quick else 50_000)
