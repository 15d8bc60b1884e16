"""``redis://host:port/db``: queued tasks shared by workers on many machines.

Every state change is one Lua script (:mod:`._redis_scripts` describes the key layout), so
claiming is atomic across workers; idle workers wait on pub/sub, not by polling. Install the
driver with ``pip install "qakeapi[redis]"``.
"""

from __future__ import annotations

import builtins
import copy
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import redis.asyncio as aioredis

from ..._redis_errors import UNREACHABLE, unavailable_as_backend_error
from ...exceptions import BackendUnavailable, CorruptTaskError, MissingParentError, TaskNotFound
from ...types import (
    QueueStats,
    TaskErrorInfo,
    TaskOutcome,
    TaskPage,
    TaskRecord,
    TaskStatus,
    WorkerInfo,
)
from . import _redis_listing as listing_lua
from . import _redis_scripts as lua
from ._base import LOST_WORKER, QueueStorage, RenewResult
from ._paging import Position, SortValue, listing, page_of
from ._redis_records import claimed_record, shown_record
from ._rows import corrupt_error_info, read_workers

__all__ = ["RedisStorage", "parse_redis_url"]

logger = logging.getLogger("qakeapi.queue")
T = TypeVar("T")
DEFAULT_PREFIX = "qakeapi"
_REDIS_ERRORS = UNREACHABLE
INDEX_CHUNK = 1_000
"""Tasks one script puts into the listing indexes when an old queue is upgraded."""
PAGE_ROUNDS = 8
"""Most reads one page makes when index entries turn out stale (storage written past the
queue): the page comes back short rather than scanning on."""


def parse_redis_url(url: str) -> tuple[str, str, str]:
    """``(url for redis-py, key prefix, host:port for messages)``; ``?prefix=`` is ours."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    prefix = next((v for k, v in query if k == "prefix"), DEFAULT_PREFIX)
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    return urlunsplit(parts._replace(query=rest)), prefix, where


def _unpacked(task_id: str, packed: str) -> dict[str, str]:
    """A task hash the page script sent as JSON ('' when gone); a field that is not text
    (written past the queue) is kept as its JSON text, so the record reads as corrupt."""
    if not packed:
        return {}
    try:
        fields = json.loads(packed)
    except ValueError:
        logger.warning("task %s: its hash could not be read back for a page", task_id)
        return {"status": "failed"}
    if not isinstance(fields, dict):
        return {"status": "failed"}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}


def _offset(value: float | None, base: float) -> str:
    """A client time as an offset from the client's clock reading ``base`` ('' = none)."""
    return "" if value is None else repr(float(value) - base)


class RedisStorage(QueueStorage):
    def __init__(self, url: str) -> None:
        self.url = url
        self._redis_url, self.prefix, self._where = parse_redis_url(url)
        self.clock: Callable[[], float] = time.time
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}

    # -- plumbing -----------------------------------------------------------------------
    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise BackendUnavailable(f"the Redis queue at {self._where} is not connected")
        return self._client

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    async def _call(self, what: Callable[[], Awaitable[T]]) -> T:
        with unavailable_as_backend_error(self._where):
            return await what()

    async def _run(self, script: str, now: float | None, *args: Any) -> Any:
        """Run a script; without ``now`` it reads the server's clock (module docstring)."""
        runner = self._scripts.get(script)
        if runner is None:
            runner = self._scripts[script] = self.client.register_script(script)
        now_arg = "" if now is None else repr(now)
        return await self._call(lambda: runner(args=[self.prefix, now_arg, *args]))

    def _base(self, now: float | None) -> float:
        """The client's clock reading that client times are made relative to."""
        return self.clock() if now is None else now

    async def _fanned(self, answer: builtins.list[Any], now: float | None
                      ) -> builtins.list[Any]:
        """Finish the fan-out a script started (its first answer says if any is left), one
        script per chunk; returns the rest of the answer."""
        more = int(answer[0])
        while more:
            more = int(await self._run(lua.FANOUT, now))
        return answer[1:]

    async def connect(self) -> None:
        try:
            client = aioredis.from_url(self._redis_url, decode_responses=True,
                                       encoding_errors="surrogateescape",
                                       socket_connect_timeout=5, health_check_interval=10)
        except ValueError as exc:
            raise BackendUnavailable(f"bad Redis URL for {self._where}: {exc}") from exc
        self._client = client
        try:
            await self._call(client.ping)
            await self._index_old_tasks()
        except BaseException:
            self._client = None
            await client.aclose()
            raise

    async def _index_old_tasks(self) -> None:
        """Put every task of a queue stored by an older qakeapi into the listing indexes
        (once, in chunks: each chunk is one script, so workers keep going meanwhile)."""
        client = self.client
        layout = self.key("layout")
        if await self._call(lambda: client.get(layout)) == listing_lua.LAYOUT:
            return
        build = client.register_script(listing_lua.BUILD_INDEXES)
        first = 0
        while True:
            done = int(await self._call(
                lambda: build(args=[self.prefix, first, INDEX_CHUNK])))  # noqa: B023
            if not done:
                break
            first += done
        await self._call(lambda: client.set(layout, listing_lua.LAYOUT))

    async def close(self) -> None:
        client, self._client = self._client, None
        self._scripts.clear()
        if client is not None:
            await client.aclose()

    # -- producing ------------------------------------------------------------------------
    async def enqueue(self, records: Sequence[TaskRecord], *, now: float | None = None) -> (
        builtins.list[TaskRecord]
    ):
        base = self._base(now)
        payload = []
        for r in records:
            fixed = {"name": r.name, "args": list(r.args), "kwargs": r.kwargs,
                     "max_retries": r.max_retries, "timeout": r.timeout,
                     "priority": r.priority, "created_at": r.created_at,
                     "parents": list(r.parents), "unique_key": r.unique_key,
                     "auto_remove": r.auto_remove}
            due = r.run_at if r.run_at is not None else r.created_at
            payload.append({
                "id": r.id, "name": r.name, "s": json.dumps(fixed, separators=(",", ":")),
                "priority": r.priority, "due": _offset(due, base),
                "run": _offset(r.run_at, base), "uk": r.unique_key or "",
                "mr": str(r.max_retries), "parents": list(r.parents),
                "created": repr(r.created_at),
                "ctx": json.dumps(r.context) if r.context else "",
                "ar": "1" if r.auto_remove else "",
            })
        result = await self._run(lua.ENQUEUE, now, json.dumps(payload))
        if result and result[0] == "missing":
            raise MissingParentError(f"parent task {result[1]!r} of task {result[2]} does not "
                                     f"exist")
        server_now = float(result[0])
        stored: builtins.list[TaskRecord] = []
        for record, answer in zip(records, result[1:], strict=True):
            if answer == "ok":  # stored as given, but with the server's run_at: no round trip
                run_at = record.run_at
                if run_at is not None:
                    record = copy.copy(record)
                    record.run_at = server_now + (run_at - base)
                stored.append(record)
                continue
            task_id = answer[4:] if answer.startswith("dup:") else record.id
            found = await self.get(task_id)
            if found is None:
                raise TaskNotFound(task_id)
            stored.append(found)
        return stored

    # -- consuming ------------------------------------------------------------------------
    async def claim(self, worker_id: str, limit: int, lease_seconds: float, *,
                    now: float | None = None) -> builtins.list[TaskRecord]:
        flat = await self._run(lua.CLAIM, now, worker_id, str(limit), repr(lease_seconds))
        claimed: builtins.list[TaskRecord] = []
        unreadable: builtins.list[TaskOutcome] = []
        i = 0
        while i < len(flat):
            task_id, size = flat[i], int(flat[i + 1])
            fields = flat[i + 2: i + 2 + size]
            i += 2 + size
            h = dict(zip(fields[::2], fields[1::2], strict=True))
            try:
                claimed.append(claimed_record(task_id, h))
            except CorruptTaskError as exc:
                logger.error("%s: recorded failed", exc)
                unreadable.append(TaskOutcome(task_id, TaskStatus.FAILED,
                                              error=corrupt_error_info(exc)))
        if unreadable:
            await self.finish(worker_id, unreadable, now=now)
        return claimed

    async def renew(self, worker_id: str, ids: Collection[str], lease_seconds: float, *,
                    now: float | None = None) -> RenewResult:
        if not ids:
            return RenewResult()
        answer = await self._run(lua.RENEW, now, worker_id, repr(lease_seconds), *ids)
        split = answer.index("|")
        return RenewResult(lost=set(answer[:split]), cancel_requested=set(answer[split + 1:]))

    async def save_progress(self, worker_id: str, task_id: str, context: dict[str, object],
                            logs: builtins.list[str]) -> None:
        await self._run(lua.SAVE_PROGRESS, None, worker_id, task_id, json.dumps(context),
                        json.dumps(list(logs)))

    async def finish(self, worker_id: str, outcomes: Sequence[TaskOutcome], *,
                     now: float | None = None) -> builtins.list[str]:
        base = self._base(now)
        payload = [{
            "id": o.id, "status": o.status.value,
            "result": "" if o.result is None else json.dumps(o.result),
            "error": "" if o.error is None else json.dumps(o.error.to_dict()),
            "run": _offset(o.run_at, base), "reason": o.cancel_reason or "",
            "context": "" if o.context is None else json.dumps(o.context),
            "logs": "" if o.logs is None else json.dumps(list(o.logs)),
        } for o in outcomes]
        if not payload:
            return []
        answer = await self._run(lua.FINISH, now, worker_id, json.dumps(payload))
        return list(await self._fanned(answer, now))

    async def reclaim_expired(self, *, now: float | None = None) -> builtins.list[str]:
        error = json.dumps(TaskErrorInfo("LeaseExpired", LOST_WORKER).to_dict())
        return list(await self._fanned(await self._run(lua.RECLAIM, now, error), now))

    async def _peek(self, now: float | None) -> tuple[float, int, float | None, float | None]:
        """``(client now, ready count, next run_at, oldest due)``, times on the client's
        clock (so a worker with a skewed clock still sleeps the right time)."""
        base = self._base(now)
        server_now, ready, first, oldest = await self._run(lua.PEEK, now)
        shift = base - float(server_now)
        return (base, int(ready), float(first) + shift if first else None,
                float(oldest) + shift if oldest else None)

    async def next_due_at(self, *, now: float | None = None) -> float | None:
        base, ready, first, _ = await self._peek(now)
        return base if ready else first

    async def listen(self, on_work: Callable[[], None], on_cancel: Callable[[str], None]) -> None:
        channel = self.key("events")
        delay = 0.1
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                delay = 0.1
                on_work()
                async for message in pubsub.listen():
                    data = message.get("data")
                    if data == "w":
                        on_work()
                    elif isinstance(data, str) and data.startswith("c:"):
                        on_cancel(data[2:])
            except _REDIS_ERRORS as exc:
                logger.warning("Redis at %s: notifications lost (%r); reconnecting in %.1f s",
                               self._where, exc, delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
                    except Exception as exc:
                        logger.debug("closing pub/sub failed: %r", exc)

    # -- operating ------------------------------------------------------------------------
    async def cancel(self, task_id: str, reason: str, *, now: float | None = None) -> TaskRecord:
        [status] = await self._fanned(await self._run(lua.CANCEL, now, task_id, reason), now)
        if not status:
            raise TaskNotFound(task_id)
        record = await self.get(task_id)
        if record is None:
            raise TaskNotFound(task_id)
        return record

    async def requeue(self, task_id: str, *, now: float | None = None) -> TaskRecord:
        [answer] = await self._fanned(await self._run(lua.REQUEUE, now, task_id), now)
        if not answer:
            raise TaskNotFound(task_id)
        kind, _, detail = answer.partition(":")
        if kind == "bad":
            raise ValueError(f"task {task_id} is {detail}; only failed or cancelled tasks "
                             f"can be retried")
        if kind == "missing":
            raise MissingParentError(f"task {task_id} can't be retried: its parent {detail} "
                                     f"no longer exists")
        if kind == "dead":
            status, _, parent = detail.partition(":")
            raise ValueError(f"task {task_id} can't be retried: its parent {parent} is "
                             f"{status}; retry the parent first")
        if kind == "unique":
            holder, _, key = detail.partition(":")
            raise ValueError(f"task {task_id} can't be retried: its unique key {key!r} is "
                             f"taken by task {holder}")
        record = await self.get(task_id)
        if record is None:
            raise TaskNotFound(task_id)
        return record

    async def get(self, task_id: str) -> TaskRecord | None:
        client = self.client
        h: dict[str, str] = await self._call(
            lambda: client.hgetall(self.key(f"t:{task_id}")))  # type: ignore[arg-type,return-value]
        return shown_record(task_id, h) if h else None

    async def _get_many(self, ids: Sequence[str]) -> builtins.list[TaskRecord]:
        client = self.client

        async def fetch() -> Any:
            async with client.pipeline(transaction=False) as pipe:
                for task_id in ids:
                    pipe.hgetall(self.key(f"t:{task_id}"))
                return await pipe.execute()

        hashes = await self._call(fetch)
        return [shown_record(i, h) for i, h in zip(ids, hashes, strict=True) if h]

    async def list(self, status: TaskStatus | None = None, *, limit: int = 100,
                   offset: int = 0) -> builtins.list[TaskRecord]:
        client = self.client
        # Newest first is the order of ``all`` and of the state's index: read the page
        # itself, not what precedes it; scan only past entries that turn out stale.
        key = listing_lua.index_key(self.prefix, status and status.value, None)
        ids = [str(i) for i in await self._call(
            lambda: client.zrevrange(key, offset, offset + limit - 1))]
        found = await self._get_many(ids) if ids else []
        if len(found) == len(ids) and all(status in (None, r.status) for r in found):
            return found
        out: builtins.list[TaskRecord] = []
        skipped = 0
        start = 0
        page = max(limit + offset, 200)
        async def read_page(first: int) -> builtins.list[str]:
            ids = await client.zrevrange(self.key("all"), first, first + page - 1)
            return [str(i) for i in ids]

        while len(out) < limit:
            ids = await self._call(lambda: read_page(start))  # noqa: B023 - awaited at once
            if not ids:
                break
            start += len(ids)
            for record in await self._get_many(ids):
                if status is not None and record.status is not status:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                out.append(record)
                if len(out) == limit:
                    break
        return out

    async def page(self, *, status: TaskStatus | None = None, name: str | None = None,
                   limit: int = 50, cursor: str | None = None) -> TaskPage:
        request, position = listing("redis", status, name, limit, cursor)
        client = self.client
        key = listing_lua.index_key(self.prefix, request.status and request.status.value,
                                    request.name)
        reader = self._scripts.get(listing_lua.PAGE)
        if reader is None:
            reader = self._scripts[listing_lua.PAGE] = client.register_script(listing_lua.PAGE)
        rows: builtins.list[tuple[SortValue, SortValue, TaskRecord]] = []
        at = position
        for _ in range(PAGE_ROUNDS):  # more rounds only past stale index entries
            wanted = request.limit + 1 - len(rows)
            if at is None:
                args = [self.prefix, key, "top", wanted]
            else:
                args = [self.prefix, key, "newer" if at.newer else "older", wanted,
                        repr(float(at.created_at)), str(at.tiebreak)]
            flat = await self._call(lambda a=args: reader(args=a))  # type: ignore[misc]
            ids = [str(i) for i in flat[::3]]
            scores = [float(x) for x in flat[1::3]]
            for task_id, score, packed in zip(ids, scores, flat[2::3], strict=True):
                h = _unpacked(task_id, packed)
                record = shown_record(task_id, h) if h else None
                if record is not None and (
                        (request.status is None or record.status is request.status)
                        and (request.name is None or h.get("nm") == request.name)):
                    rows.append((score, task_id, record))
            if len(ids) < wanted or len(rows) > request.limit:
                break
            at = Position(scores[-1], ids[-1], newer=position is not None and position.newer)
        return page_of(request, position, rows[:request.limit + 1])

    async def children(self, task_id: str, *, limit: int = 100) -> builtins.list[TaskRecord]:
        client = self.client
        key = self.key(f"children:{task_id}")
        ids: builtins.list[str] = []
        cursor = 0
        while len(ids) < limit:
            cursor, found = await self._call(
                lambda c=cursor: client.sscan(key, c, count=limit))  # type: ignore[misc]
            ids.extend(str(i) for i in found)
            if cursor == 0:
                break
        records = await self._get_many(ids[:limit]) if ids else []
        return sorted(records, key=lambda r: r.created_at)

    async def stats(self, *, now: float | None = None) -> QueueStats:
        client = self.client
        raw = await self._call(lambda: client.hgetall(self.key("counts")))
        counts = {s: max(0, int(raw.get(s.value, 0))) for s in TaskStatus}
        *_, oldest = await self._peek(now)
        return QueueStats(counts=counts, oldest_pending_at=oldest)

    async def purge(self, statuses: Collection[TaskStatus], *,
                    finished_before: float | None = None) -> int:
        chosen = [s.value for s in statuses if s.is_terminal]
        if not chosen:
            return 0
        return int(await self._run(lua.PURGE, None, _offset(finished_before, self.clock()),
                                   *chosen))

    # -- workers --------------------------------------------------------------------------
    async def register_worker(self, info: WorkerInfo) -> None:
        client = self.client
        await self._call(lambda: client.hset(self.key("workers"), info.id,
                                              json.dumps(info.to_dict())))

    async def unregister_worker(self, worker_id: str) -> None:
        client = self.client
        await self._call(lambda: client.hdel(self.key("workers"), worker_id))

    async def list_workers(self) -> builtins.list[WorkerInfo]:
        client = self.client
        raw = await self._call(lambda: client.hgetall(self.key("workers")))
        return read_workers(sorted(raw.items()))

    # -- clearing -------------------------------------------------------------------------
    async def delete_pending(self) -> int:
        return int(await self._run(lua.DELETE_PENDING, None))
