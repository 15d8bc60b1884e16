"""``qakeapi queue start --workers N``: keep N worker processes running.

A worker process that exits while the supervisor is not stopping is started again, after a
backoff that grows while it keeps dying young (and resets once it has run a while); why it
ended (its exit code or the signal that killed it) is logged. SIGINT/SIGTERM are passed once
to every worker, which then drains; the supervisor exits when they all have.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from ..constants import (
    SUPERVISOR_BACKOFF_BASE,
    SUPERVISOR_BACKOFF_MAX,
    SUPERVISOR_CHECK_SECONDS,
    SUPERVISOR_MAX_QUICK_FAILURES,
    SUPERVISOR_STABLE_SECONDS,
)

__all__ = ["Supervisor", "WorkersKeepFailing", "describe_exit"]

logger = logging.getLogger("qakeapi.supervisor")


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


class WorkersKeepFailing(RuntimeError):
    """A worker process died young too many times in a row: the supervisor gave up."""


@dataclass(slots=True)
class _Slot:
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    failures: int = 0
    restart_at: float | None = None


class Supervisor:
    """Runs ``workers`` copies of ``command`` until a signal, restarting the ones that die."""

    def __init__(self, command: list[str], workers: int) -> None:
        self.command = command
        self.workers = workers
        self.slots: list[_Slot] = []
        self._signal: int | None = None
        self._signalled: set[int] = set()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._signal is not None:
            self._signalled.clear()  # a second signal is passed on too: it forces the stop
        self._signal = signum
        self._forward()

    def _forward(self) -> None:
        """Pass the stop signal to each live worker once (a second one forces it)."""
        if self._signal is None:
            return
        for slot in self.slots:
            process = slot.process
            if process.pid not in self._signalled and process.poll() is None:
                self._signalled.add(process.pid)
                process.send_signal(self._signal)

    def run(self) -> int:
        """Supervise until stopped; the workers' highest exit code.

        Raises WorkersKeepFailing (after stopping the others) when one keeps dying young."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self.slots = [_Slot(self._spawn()) for _ in range(self.workers)]
        try:
            while self._signal is None:
                for slot in self.slots:
                    self._check(slot)
                time.sleep(SUPERVISOR_CHECK_SECONDS)
        except WorkersKeepFailing:
            self._signal = signal.SIGTERM
            raise
        finally:
            self._forward()
            codes = [(slot.process.wait(), slot.restart_at) for slot in self.slots]
        return max([self._exit_status(code) for code, restart_at in codes
                    if restart_at is None] or [0])

    def _exit_status(self, returncode: int) -> int:
        """0 for a worker that stopped, or died of the stop signal before it could drain;
        128 + N for one killed by another signal N (as a shell reports it)."""
        if returncode >= 0:
            return returncode
        return 0 if -returncode == self._signal else 128 - returncode

    def _check(self, slot: _Slot) -> None:
        code = slot.process.poll()
        if code is None:
            return
        now = time.monotonic()
        if slot.restart_at is None:
            lived = now - slot.started
            slot.failures = 1 if lived >= SUPERVISOR_STABLE_SECONDS else slot.failures + 1
            if slot.failures > SUPERVISOR_MAX_QUICK_FAILURES:
                raise WorkersKeepFailing(
                    f"worker process {slot.process.pid} {describe_exit(code)} after "
                    f"{lived:.1f} s, the {slot.failures}th quick failure in a row: giving up")
            delay = min(SUPERVISOR_BACKOFF_MAX,
                        SUPERVISOR_BACKOFF_BASE * 2 ** (slot.failures - 1))
            slot.restart_at = now + delay
            logger.warning("worker process %d %s after %.1f s; starting a new one in %.1f s",
                           slot.process.pid, describe_exit(code), lived, delay)
        elif now >= slot.restart_at and self._signal is None:
            slot.process = self._spawn()
            slot.started = now
            slot.restart_at = None
            logger.warning("worker process %d started in place of the one that ended",
                           slot.process.pid)
