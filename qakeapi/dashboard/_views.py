"""The pages, rendered on the server: they read fine with JavaScript disabled."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlencode

from ..constants import DASHBOARD_GRAPH_TASKS, DASHBOARD_LOG_LINES, DASHBOARD_RECENT_SAMPLE
from ..types import TaskPage, TaskRecord, TaskStatus
from ._chart import throughput_svg
from ._data import Overview
from ._markup import (
    ago,
    badge,
    duration,
    esc,
    json_block,
    progress_bar,
    progress_value,
    stamp,
    table,
    tree,
)

__all__ = ["Page", "confirm_page", "context_html", "list_page", "login_page", "overview_page",
           "task_page"]


@dataclass(frozen=True, slots=True)
class Page:
    """What every page needs besides its data."""

    root: str
    csrf: str
    read_only: bool


def _card(title: str, body: str, extra: str = "") -> str:
    return f'<section class="card {extra}"><h2>{esc(title)}</h2>{body}</section>'


def _task_link(page: Page, record: TaskRecord, background: bool = False) -> str:
    where = "background" if background else "task"
    return (f'<a class="id" href="{esc(page.root)}/{where}/{esc(record.id)}">'
            f'{esc(record.id[:12])}</a>')


def overview_page(page: Page, data: Overview) -> str:
    now = time.time()
    counts = data.stats.counts
    tiles = "".join(
        f'<a class="tile s-{s.value}" href="{esc(page.root)}/tasks?status={s.value}">'
        f'<span class="num" data-live="count-{s.value}">{counts.get(s, 0):,}</span>'
        f'<span class="lbl">{s.value}</span></a>' for s in TaskStatus)
    depth = counts.get(TaskStatus.PENDING, 0)
    oldest = data.stats.oldest_pending_at
    facts = (f'<div class="facts"><div><span class="lbl">queue depth</span>'
             f'<span class="big" data-live="depth">{depth:,}</span></div>'
             f'<div><span class="lbl">oldest pending</span>'
             f'<span class="big" data-live="oldest">{esc(ago(oldest, now))}</span></div>'
             f'<div><span class="lbl">live workers</span>'
             f'<span class="big" data-live="workers">{len(data.workers)}</span></div></div>')
    finished = sum(b.succeeded for b in data.chart), sum(b.failed for b in data.chart)
    legend = (f'<p class="legend"><span class="sw ok"></span>{finished[0]:,} succeeded '
              f'<span class="sw bad"></span>{finished[1]:,} failed'
              + (f' <span class="muted">· counted among the newest {DASHBOARD_RECENT_SAMPLE:,} '
                 'tasks</span>' if data.sampled else "") + '</p>')
    worker_rows = [
        f'<tr><td><code>{esc(w.info.id)}</code></td><td>{esc(w.info.hostname)}:{w.info.pid}</td>'
        f'<td>{max(w.info.running, len(w.running))}/{w.info.concurrency}</td>'
        f'<td>{esc(ago(w.info.last_heartbeat, now))}</td>'
        f'<td>{", ".join(f"{_task_link(page, r)} {esc(r.name)}" for r in w.running)}</td></tr>'
        for w in data.workers]
    body = (f'<h1>Overview</h1><div class="tiles">{tiles}</div>{facts}'
            + _card("Finished in the last hour", throughput_svg(data.chart) + legend)
            + _card("Workers", table(["worker", "host", "busy", "heartbeat", "running"],
                                     worker_rows, "No live worker."), "workers"))
    if data.background_counts is not None:
        bg_counts = " ".join(f'{badge(s)} {data.background_counts.get(s, 0)}'
                             for s in TaskStatus)
        rows = [f'<tr><td>{_task_link(page, r, True)}</td><td>{esc(r.name)}</td>'
                f'<td>{badge(r.status)}</td><td>{esc(ago(r.created_at, now))}</td></tr>'
                for r in data.background]
        body += _card("This process's background tasks",
                      f'<p class="counts">{bg_counts}</p>'
                      + table(["id", "name", "state", "added"], rows,
                              "No background task in this process."))
    return body


def _filters(page: Page, status: TaskStatus | None, name: str | None) -> str:
    options = '<option value="">any state</option>' + "".join(
        f'<option value="{s.value}"{" selected" if s is status else ""}>{s.value}</option>'
        for s in TaskStatus)
    return (f'<div class="filters"><form method="get" action="{esc(page.root)}/tasks">'
            f'<select name="status">{options}</select>'
            f'<input name="name" placeholder="task name" value="{esc(name or "")}">'
            '<button type="submit">Filter</button></form>'
            f'<form method="post" action="{esc(page.root)}/search" class="search">'
            f'<input type="hidden" name="csrf" value="{esc(page.csrf)}">'
            '<input name="id" placeholder="task id" required>'
            '<button type="submit">Find</button></form></div>')


def _progress_cell(record: TaskRecord) -> str:
    value = progress_value(record.context)
    return '<span class="muted">—</span>' if value is None else progress_bar(value)


def list_page(page: Page, status: TaskStatus | None, name: str | None,
              data: TaskPage) -> str:
    """The task list; its links carry the filters and an opaque cursor (a position in the
    list, never task data)."""
    now = time.time()
    rows = [
        f'<tr><td>{_task_link(page, r)}</td><td>{esc(r.name)}</td><td>{badge(r.status)}</td>'
        f'<td>{_progress_cell(r)}</td><td>{r.attempts}</td>'
        f'<td title="{esc(stamp(r.created_at))}">{esc(ago(r.created_at, now))}</td>'
        f'<td>{esc(duration(r.started_at, r.finished_at))}</td></tr>' for r in data.records]
    nav = ""
    query = {k: v for k, v in (("status", status.value if status else ""),
                               ("name", name or "")) if v}
    here = f"{esc(page.root)}/tasks?"
    if data.newer is not None:
        nav += f'<a class="button" href="{here}{esc(urlencode(query))}">Newest</a>'
        newer = urlencode({**query, "cursor": data.newer})
        nav += f'<a class="button" rel="prev" href="{here}{esc(newer)}">Newer</a>'
    if data.older is not None:
        older = urlencode({**query, "cursor": data.older})
        nav += f'<a class="button" rel="next" href="{here}{esc(older)}">Older</a>'
    purge = ""
    if not page.read_only:
        purge = f'<a class="button danger" href="{esc(page.root)}/purge">Purge finished…</a>'
    return (f'<div class="head"><h1>Tasks</h1>{purge}</div>{_filters(page, status, name)}'
            + table(["id", "name", "state", "progress", "attempts", "added", "took"], rows,
                    "No task matches.")
            + f'<div class="pager">{nav}</div>')


def _actions(page: Page, record: TaskRecord) -> str:
    if page.read_only:
        return ""
    buttons = []
    if not record.is_terminal:
        buttons.append(f'<a class="button danger" data-action="cancel" '
                       f'href="{esc(page.root)}/task/{esc(record.id)}/cancel">Cancel…</a>')
    if record.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
        buttons.append(f'<a class="button" data-action="retry" '
                       f'href="{esc(page.root)}/task/{esc(record.id)}/retry">Retry…</a>')
    return f'<div class="actions">{"".join(buttons)}</div>'


def context_html(record: TaskRecord) -> str:
    return tree(record.context) if record.context else '<p class="empty">No context.</p>'


def _task_progress(record: TaskRecord) -> str:
    value = progress_value(record.context)
    if value is None and record.is_terminal:
        return ""
    return progress_bar(value)


def _related(page: Page, title: str, records: list[TaskRecord], empty: str) -> str:
    if not records:
        return f'<h3>{esc(title)}</h3><p class="empty">{esc(empty)}</p>'
    items = "".join(f'<li>{badge(r.status)} {_task_link(page, r)} {esc(r.name)}</li>'
                    for r in records)
    more = ("" if len(records) < DASHBOARD_GRAPH_TASKS
            else f'<p class="note">showing {DASHBOARD_GRAPH_TASKS}</p>')
    return f'<h3>{esc(title)}</h3><ul class="related">{items}</ul>{more}'


def task_page(page: Page, record: TaskRecord, background: bool = False,
              graph: tuple[list[TaskRecord], list[TaskRecord]] | None = None) -> str:
    now = time.time()
    timings = [("added", stamp(record.created_at)), ("due", stamp(record.run_at)),
               ("started", stamp(record.started_at)), ("finished", stamp(record.finished_at)),
               ("waited", duration(record.created_at, record.started_at)),
               ("ran", duration(record.started_at, record.finished_at or
                                (now if record.status is TaskStatus.RUNNING else None))),
               ("attempts", f"{record.attempts} of {record.max_retries + 1}"),
               ("worker", record.worker_id or "—"), ("priority", str(record.priority)),
               ("timeout", "—" if record.timeout is None else f"{record.timeout:g} s")]
    facts = "".join(f'<dt>{esc(k)}</dt><dd data-live="{esc(k)}">{esc(v)}</dd>'
                    for k, v in timings)
    head = (f'<div class="head"><h1>{esc(record.name)} {badge(record.status)}</h1>'
            f'{"" if background else _actions(page, record)}</div>'
            f'<p class="sub"><code>{esc(record.id)}</code>'
            f'{" · in-process background task" if background else ""}</p>'
            + _task_progress(record))
    if record.cancel_reason:
        head += f'<p class="note">cancelled: {esc(record.cancel_reason)}</p>'
    main = _card("Arguments", json_block({"args": record.args, "kwargs": record.kwargs}))
    if record.status is TaskStatus.SUCCEEDED:
        main += _card("Result", json_block(record.result))
    if record.error is not None:
        err = record.error
        main += _card("Error", f'<p class="err"><b>{esc(err.type)}</b>: {esc(err.message)}</p>'
                      f'<pre class="code tb">{esc(err.traceback or "")}</pre>', "error")
    logs = list(record.logs)[-DASHBOARD_LOG_LINES:]
    lines = "".join(f"<li>{esc(line)}</li>" for line in logs)
    main += _card("Logs", f'<ol class="logs" data-live="logs" data-count="{len(logs)}">'
                  f'{lines}</ol>' + ("" if logs else '<p class="empty">No log line yet.</p>'))
    side = (_card("Attempts and timings", f'<dl class="kv">{facts}</dl>')
            + _card("Context", f'<div data-live="context">{context_html(record)}</div>'))
    if graph is not None:
        side += _card("Dependencies", _related(page, "Runs after", graph[0], "No parent.")
                      + _related(page, "Runs before", graph[1], "No child."))
    return f'{head}<div class="cols"><div>{main}</div><div>{side}</div></div>'


def confirm_page(page: Page, title: str, text: str, action: str, button: str,
                 back: str, extra: str = "") -> str:
    return (f'<section class="card confirm"><h1>{esc(title)}</h1><p>{esc(text)}</p>'
            f'<form method="post" action="{esc(action)}">'
            f'<input type="hidden" name="csrf" value="{esc(page.csrf)}">{extra}'
            f'<button type="submit" class="danger" data-confirm>{esc(button)}</button> '
            f'<a class="button" href="{esc(back)}">Back</a></form></section>')


def login_page(root: str, failed: bool) -> str:
    error = '<p class="err">That token is not right.</p>' if failed else ""
    return (f'<section class="card confirm"><h1>Sign in</h1>{error}'
            '<p>This dashboard needs its access token.</p>'
            f'<form method="post" action="{esc(root)}/login">'
            '<input type="password" name="token" placeholder="token" autofocus required>'
            '<button type="submit">Sign in</button></form></section>')
