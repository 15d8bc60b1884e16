"""The SQLite wake-up sockets live in a private directory that is removed when done.

Hostile directories are planted where the sockets could go; a real worker process runs real
tasks; the strangers' sockets must receive nothing and nothing of ours may be left behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from qakeapi.queued_tasks import QueuedTasks, QueueSettings
from qakeapi.queued_tasks.backends import open_storage
from qakeapi.types import TaskRecord

from . import _queue_tasks as t
from ._processes import read_runs, start_worker, stop, wait_until, write_task_app

OTHER_UID = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="a directory of another user needs root to make")


@pytest.fixture
def temp_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temp directory of this test (short: socket paths are limited) for this process and
    the workers it starts."""
    root = Path(tempfile.mkdtemp(prefix="qk"))
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    monkeypatch.setenv("TMPDIR", str(root))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    yield root
    shutil.rmtree(root)


def digest(db: Path) -> str:
    return hashlib.sha1(str(db.resolve()).encode()).hexdigest()[:16]


def spy(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    return sock


def received(sock: socket.socket) -> list[bytes]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(100))
        except BlockingIOError:
            return messages


def sockets_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_socket())


def leftovers(db_dir: Path, temp: Path) -> list[str]:
    return [p.name for p in db_dir.iterdir() if "qakeapi" in p.name] + [
        p.name for p in temp.iterdir()]


def is_private(directory: Path) -> bool:
    try:
        st = directory.lstat()
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0


async def run_tasks(db: Path, count: int) -> None:
    storage = open_storage(f"sqlite:///{db}")
    await storage.connect()
    try:
        await storage.enqueue([TaskRecord(id=f"t{i}", name="taskapp:work", args=[i], kwargs={},
                                          created_at=1.0) for i in range(count)])
    finally:
        await storage.close()


def run_worker(tmp_path: Path, db: Path, while_running: list[Path]) -> list[str]:
    """Run 5 tasks on a real worker; the sockets in ``while_running`` directories then."""
    runs = write_task_app(tmp_path)
    worker = start_worker(tmp_path, f"sqlite:///{db}")
    try:
        wait_until(lambda: any(is_private(d) and sockets_in(d) for d in while_running), 30,
                   "the worker's wake-up socket in a private directory")
        seen = [f"{d.name}/{s}" for d in while_running if is_private(d) for s in sockets_in(d)]
        anyio.run(run_tasks, db, 5)
        wait_until(lambda: sorted(read_runs(runs)) == list(range(5)), 30, "5 runs")
    finally:
        stop(worker)
    return seen


def test_a_world_writable_directory_is_replaced(tmp_path: Path, temp_root: Path) -> None:
    db = tmp_path / "queue.db"
    attacker = tmp_path / "attacker"
    attacker.mkdir()
    beside = tmp_path / ".queue.db.qakeapi"
    beside.mkdir()
    beside.chmod(0o777)
    spies = [spy(beside / "1-stranger.sock"), spy(attacker / "1-spy.sock")]
    legacy = temp_root / f"qakeapi-{digest(db)}"
    legacy.symlink_to(attacker)

    seen = run_worker(tmp_path, db, [beside])

    assert len(seen) == 1 and seen[0].startswith(".queue.db.qakeapi/")
    assert [received(s) for s in spies] == [[], []]
    assert not beside.exists(), "the last worker leaves no directory behind"
    assert sockets_in(attacker) == ["1-spy.sock"]


@needs_root
def test_another_users_directory_is_skipped(tmp_path: Path, temp_root: Path) -> None:
    db = tmp_path / "queue.db"
    foreign = tmp_path / ".queue.db.qakeapi"
    foreign.mkdir(mode=0o700)
    spies = [spy(foreign / "1-foreign.sock")]
    os.chown(foreign, OTHER_UID, OTHER_UID)
    fallback = temp_root / f"qakeapi-{os.geteuid()}-{digest(db)}"

    seen = run_worker(tmp_path, db, [fallback])

    assert len(seen) == 1
    assert [received(s) for s in spies] == [[]]
    assert foreign.stat().st_uid == OTHER_UID and sockets_in(foreign) == ["1-foreign.sock"]
    assert list(temp_root.iterdir()) == []


@pytest.mark.anyio
async def test_stale_sockets_are_pruned_and_the_last_listener_removes_the_directory(
        tmp_path: Path, temp_root: Path) -> None:
    db = tmp_path / "queue.db"
    beside = tmp_path / ".queue.db.qakeapi"
    beside.mkdir(mode=0o700)
    spy(beside / "99999-dead.sock").close()  # a socket file nobody listens on any more
    settings = QueueSettings(url=f"sqlite:///{db}", shutdown_grace=1.0)
    async with QueuedTasks(settings=settings) as first:
        async with QueuedTasks(settings=settings) as second:
            with anyio.fail_after(20):
                while len(sockets_in(beside)) != 2 or "99999-dead.sock" in sockets_in(beside):
                    await anyio.sleep(0.05)
            assert is_private(beside)
            for queue in (first, second):
                queue.register(t.add)
            assert await second.add_task(t.add, 1, 2).result(20) == 3
        assert len(sockets_in(beside)) == 1
        assert await first.add_task(t.add, 2, 2).result(20) == 4
    assert leftovers(tmp_path, temp_root) == []
