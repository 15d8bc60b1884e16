"""What a process has spent so far, from ``/proc`` (CPU seconds, read/write system calls and
bytes, voluntary context switches) and from valgrind's log (instructions): a
:class:`Sample` taken before and after a piece of work, subtracted."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["VALGRIND", "Sample", "cpu_seconds", "instructions", "sample"]

VALGRIND = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
"""Run a command under this (and ``--log-file=...``) to count its instructions."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Sample:
    """What a process spent between two samples (counters since its start, until
    subtracted)."""

    cpu: float
    syscalls: int
    io_bytes: int
    switches: int
    instructions: int = 0

    def __sub__(self, other: Sample) -> Sample:
        return Sample(self.cpu - other.cpu, self.syscalls - other.syscalls,
                      self.io_bytes - other.io_bytes, self.switches - other.switches,
                      self.instructions - other.instructions)


def sample(pid: int) -> Sample:
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    status = dict(line.split(":\t") for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)
    return Sample(cpu_seconds(pid), int(io["syscr"]) + int(io["syscw"]),
                  int(io["rchar"]) + int(io["wchar"]), int(status["voluntary_ctxt_switches"]))


def instructions(log: Path) -> int:
    """The instructions cachegrind counted (its "I refs" summary line)."""
    for line in log.read_text().splitlines():
        if "I   refs:" in line:
            return int(line.split(":")[1].replace(",", ""))
    raise RuntimeError(f"no instruction count in {log}")
