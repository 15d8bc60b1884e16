"""Waking idle workers of one SQLite queue across processes, without polling.

Each listening worker binds a Unix datagram socket in a private directory (mode 0700, owned
by this user) shared by every process of this user using the same database file: beside the
file (``.queue.db.qakeapi``), else under ``XDG_RUNTIME_DIR``, else in the temp directory.
A directory that is not private (another owner, group/other access, a symlink) is never
used: one of ours is replaced, anyone else's is skipped. After a commit that makes work due,
the writer sends ``w`` to every socket there (``c:<id>`` asks the worker running that task
to cancel it). Sockets nobody listens on are removed; the last listener to stop removes the
directory.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable

import anyio
import anyio.abc

from ...constants import BIND_ATTEMPTS, NOTIFY_DIR_SUFFIX, UNIX_SOCKET_PATH_MAX

__all__ = ["Notifier", "notify_dirs"]

logger = logging.getLogger("qakeapi.queue")

_SOCKET_NAME_MAX = len("4194304-00000000.sock")
_PROBE = b""
"""An empty datagram: listeners ignore it; a socket nobody listens on refuses it."""


def notify_dirs(db_path: str) -> list[str]:
    """Where the sockets for ``db_path`` may live, in order of preference."""
    real = os.path.realpath(db_path)
    digest = hashlib.sha1(real.encode()).hexdigest()[:16]
    candidates = [os.path.join(os.path.dirname(real),
                               f".{os.path.basename(real)}{NOTIFY_DIR_SUFFIX}")]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        candidates.append(os.path.join(runtime, f"qakeapi-{digest}"))
    candidates.append(os.path.join(tempfile.gettempdir(), f"qakeapi-{os.geteuid()}-{digest}"))
    return [c for c in candidates if len(c) + 1 + _SOCKET_NAME_MAX <= UNIX_SOCKET_PATH_MAX]


def is_private(path: str) -> bool:
    """``path`` is a real directory (not a symlink) of ours that nobody else may enter."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()
            and stat.S_IMODE(st.st_mode) & 0o077 == 0)


def _make_private(path: str) -> bool:
    """Create ``path`` private, replacing one of ours that isn't; False if it can't be."""
    for _ in range(2):
        try:
            os.mkdir(path, 0o700)
            os.chmod(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            logger.debug("can't create the wake-up directory %s: %r", path, exc)
            return False
        if is_private(path):
            return True
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if st.st_uid != os.geteuid():
            logger.warning("not using the wake-up directory %s: it belongs to uid %d",
                           path, st.st_uid)
            return False
        logger.warning("replacing the wake-up directory %s: it was not private (mode %o)",
                       path, stat.S_IMODE(st.st_mode))
        try:
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except OSError as exc:
            logger.warning("can't replace %s: %r", path, exc)
            return False
    return False


def _send_all(sender: socket.socket, directory: str, message: bytes) -> None:
    """Send ``message`` to every socket in ``directory``; remove those nobody listens on."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        path = os.path.join(directory, name)
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


def _prune(directory: str) -> None:
    """Remove sockets nobody listens on (left by dead processes)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        probe.setblocking(False)
        _send_all(probe, directory, _PROBE)


class Notifier:
    """Sends and receives wake-ups for one database file."""

    def __init__(self, db_path: str) -> None:
        self.directories = notify_dirs(db_path)
        self._sender: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self._sender is None:
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
            self._sender = sender
        return self._sender

    def send(self, message: bytes) -> None:
        """Send ``message`` to every listener (never blocks, never raises)."""
        for directory in self.directories:
            if is_private(directory):
                _send_all(self._socket(), directory, message)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    def _bind_path(self) -> str | None:
        """A fresh socket path in the first directory that is (or can be made) private."""
        for directory in self.directories:
            if _make_private(directory):
                _prune(directory)
                return os.path.join(directory, f"{os.getpid()}-{os.urandom(4).hex()}.sock")
        return None

    async def _bind(self) -> tuple[str, anyio.abc.UNIXDatagramSocket] | None:
        for _ in range(BIND_ATTEMPTS):
            path = await anyio.to_thread.run_sync(self._bind_path)
            if path is None:
                break
            try:
                return path, await anyio.create_unix_datagram_socket(local_path=path)
            except FileNotFoundError:
                continue  # the last listener removed the directory meanwhile
        logger.warning("no private directory for SQLite wake-ups (tried %s): idle workers "
                       "will only recheck the queue periodically", ", ".join(self.directories))
        return None

    async def listen(self, on_work: Callable[[], None], on_cancel: Callable[[str], None]) -> None:
        bound = await self._bind()
        if bound is None:
            on_work()
            return
        path, sock = bound
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
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._leave, path)

    @staticmethod
    def _leave(path: str) -> None:
        """Remove our socket; the last listener also removes the directory."""
        directory = os.path.dirname(path)
        with contextlib.suppress(OSError):
            os.unlink(path)
        _prune(directory)
        with contextlib.suppress(OSError):
            os.rmdir(directory)
