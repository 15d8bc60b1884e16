"""HTML building blocks: every value passes through :func:`esc` on its way into a page."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterable
from typing import Any

from ..types import TaskStatus

__all__ = ["ago", "badge", "duration", "esc", "json_block", "layout", "progress_bar", "tree"]


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def ago(ts: float | None, now: float | None = None) -> str:
    if ts is None:
        return "—"
    seconds = (time.time() if now is None else now) - ts
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 1:
        text = "just now" if not future else "now"
        return text
    if seconds < 60:
        text = f"{seconds:.0f}s"
    elif seconds < 3600:
        text = f"{seconds // 60:.0f}m {seconds % 60:.0f}s"
    elif seconds < 86400:
        text = f"{seconds // 3600:.0f}h {seconds % 3600 // 60:.0f}m"
    else:
        text = f"{seconds // 86400:.0f}d {seconds % 86400 // 3600:.0f}h"
    return f"in {text}" if future else f"{text} ago"


def duration(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = max(0.0, end - start)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def stamp(ts: float | None) -> str:
    if ts is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def badge(status: TaskStatus | str) -> str:
    value = str(status)
    return f'<span class="badge s-{esc(value)}" data-live="status">{esc(value)}</span>'


def progress_value(context: Any) -> float | None:
    value = context.get("progress") if isinstance(context, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0.0, min(100.0, float(value)))


def progress_bar(value: float | None) -> str:
    width = 0.0 if value is None else value
    label = "—" if value is None else f"{value:.0f}%"
    return (f'<div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
            f'aria-valuenow="{width:.0f}" data-live="progress">'
            f'<div class="bar" style="width:{width:.1f}%"></div>'
            f'<span class="label">{esc(label)}</span></div>')


def json_block(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=repr, sort_keys=True)
    return f'<pre class="code">{esc(text)}</pre>'


def tree(value: Any) -> str:
    """A nested dict/list as nested lists, leaves as JSON."""
    if isinstance(value, dict) and value:
        items = "".join(f'<li><span class="key">{esc(k)}</span>{_branch(v)}</li>'
                        for k, v in value.items())
        return f'<ul class="tree">{items}</ul>'
    if isinstance(value, list) and value:
        items = "".join(f'<li><span class="key">[{i}]</span>{_branch(v)}</li>'
                        for i, v in enumerate(value))
        return f'<ul class="tree">{items}</ul>'
    return f'<code class="leaf">{esc(json.dumps(value, ensure_ascii=False, default=repr))}</code>'


def _branch(value: Any) -> str:
    if isinstance(value, dict | list) and value:
        return tree(value)
    return " " + tree(value)


def nav_link(href: str, label: str, current: bool) -> str:
    cls = ' class="current"' if current else ""
    return f'<a href="{esc(href)}"{cls}>{esc(label)}</a>'


def layout(*, root: str, title: str, body: str, current: str, live: str | None = None,
           read_only: bool = False, flash: str | None = None) -> str:
    """A whole page. ``live`` is the URL of the page's event stream (enhancement only)."""
    links = "".join(nav_link(f"{root}{href}", label, current == href)
                    for href, label in (("/", "Overview"), ("/tasks", "Tasks")))
    mode = '<span class="mode">read-only</span>' if read_only else ""
    live_attr = f' data-live-url="{esc(live)}"' if live else ""
    notice = f'<div class="flash">{esc(flash)}</div>' if flash else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{esc(title)} · qakeapi tasks</title>'
        f'<link rel="stylesheet" href="{esc(root)}/static/dashboard.css">'
        f'<script defer src="{esc(root)}/static/dashboard.js"></script></head>'
        f'<body{live_attr}><header class="top"><a class="brand" href="{esc(root)}/">'
        '<span class="logo">q</span>qakeapi tasks</a>'
        f'<nav>{links}</nav>{mode}<span class="live-dot" title="live updates"></span></header>'
        f'<main>{notice}{body}</main></body></html>')


def table(headers: Iterable[str], rows: Iterable[str], empty: str) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(rows)
    if not body:
        return f'<p class="empty">{esc(empty)}</p>'
    return f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
