"""The overview's throughput chart: stacked bars (succeeded, failed) as inline SVG."""

from __future__ import annotations

import time

from ._data import ChartBucket
from ._markup import esc

__all__ = ["throughput_svg"]

WIDTH = 1100
HEIGHT = 170
AXIS = 18


def throughput_svg(buckets: list[ChartBucket]) -> str:
    top = max((b.succeeded + b.failed for b in buckets), default=0)
    scale = (HEIGHT - AXIS - 14) / top if top else 0.0
    step = WIDTH / max(len(buckets), 1)
    bar = step * 0.7
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             'aria-label="tasks finished per five minutes over the last hour">',
             f'<line x1="0" y1="{HEIGHT - AXIS}" x2="{WIDTH}" y2="{HEIGHT - AXIS}" '
             'class="axis"/>']
    for i, bucket in enumerate(buckets):
        x = i * step + (step - bar) / 2
        base = HEIGHT - AXIS
        ok_h = bucket.succeeded * scale
        bad_h = bucket.failed * scale
        label = (f"{time.strftime('%H:%M', time.localtime(bucket.start))}: "
                 f"{bucket.succeeded} succeeded, {bucket.failed} failed")
        parts.append(f'<g><title>{esc(label)}</title>'
                     f'<rect class="ok" x="{x:.1f}" y="{base - ok_h:.1f}" width="{bar:.1f}" '
                     f'height="{ok_h:.1f}" rx="2"/>'
                     f'<rect class="bad" x="{x:.1f}" y="{base - ok_h - bad_h:.1f}" '
                     f'width="{bar:.1f}" height="{bad_h:.1f}" rx="2"/></g>')
        if i % 3 == 0:
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 4}" class="tick">'
                         f'{esc(time.strftime("%H:%M", time.localtime(bucket.start)))}</text>')
    parts.append(f'<text x="{WIDTH - 4}" y="12" class="tick" text-anchor="end">'
                 f'max {top} / 5 min</text></svg>')
    return "".join(parts)
