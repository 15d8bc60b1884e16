"""Waking idle workers of one SQLite queue across processes, without polling.

Each listening worker binds a Unix datagram socket in a directory shared by everyone using
the same database file. After a commit that makes work due, the writer sends ``w`` to every
socket there (``c:<id>`` asks the worker running that task to cancel it). Sockets of dead
processes are removed when a send finds nobody behind them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import socket
import tempfile
from collections.abc import Callable

import anyio

__all__ = ["Notifier"]

logger = logging.getLogger("qakeapi.queue")


def notify_dir(db_path: str) -> str:
    digest = hashlib.sha1(os.path.realpath(db_path).encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"qakeapi-{digest}")


class Notifier:
    """Sends and receives wake-ups for one database file."""

    def __init__(self, db_path: str) -> None:
        self.directory = notify_dir(db_path)
        self._sender: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self._sender is None:
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
            self._sender = sender
        return self._sender

    def send(self, message: bytes) -> None:
        """Send ``message`` to every listener (never blocks, never raises)."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        sender = self._socket()
        for name in names:
            path = os.path.join(self.directory, name)
            try:
                sender.sendto(message, path)
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            except BlockingIOError:
                pass  # its buffer is full of wake-ups already
            except OSError as exc:
                if exc.errno not in (errno.ENOBUFS, errno.EAGAIN):
                    logger.warning("notifying %s failed: %r", path, exc)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    async def listen(self, on_work: Callable[[], None], on_cancel: Callable[[str], None]) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        path = os.path.join(self.directory, f"{os.getpid()}-{os.urandom(4).hex()}.sock")
        sock = await anyio.create_unix_datagram_socket(local_path=path)
        try:
            async with sock:
                on_work()
                while True:
                    data, _ = await sock.receive()
                    if data == b"w":
                        on_work()
                    elif data.startswith(b"c:"):
                        on_cancel(data[2:].decode("utf-8", "replace"))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
