"""Line charts drawn on the server as SVG (no script, no CDN). No I/O."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

COLORS = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2")
THRESHOLD_COLOR = "#dc2626"


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float | None]]  # (epoch seconds, value or None for a gap)
    color: str = ""


def _ticks(top: float) -> list[float]:
    return [top * i / 4 for i in range(5)]


def _nice(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10 ** len(str(int(value))) / 10 if value >= 1 else 1.0
    if value < 1:
        exponent = 1.0
        while exponent / 10 >= value:
            exponent /= 10
    for m in (1, 2, 2.5, 5, 10):
        if m * exponent >= value:
            return m * exponent
    return 10 * exponent


def line_chart(*, chart_id: str, title: str, series: Sequence[Series], start: float, end: float,
               threshold: float | None = None, fmt: Callable[[float], str] = lambda v: f"{v:,.4g}",
               width: int = 640, height: int = 200) -> SafeString:
    """An SVG line chart; `threshold` is drawn as a dashed red line (and kept in view)."""
    left, right, top, bottom = 64, 12, 24, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for _, v in s.points if v is not None]
    peak = max(values + ([threshold * 1.2] if threshold is not None else []) + [0.0])
    y_max = _nice(peak * 1.05) if peak > 0 else 1.0
    span = max(end - start, 1.0)

    def x(t: float) -> float:
        return left + plot_w * (t - start) / span

    def y(v: float) -> float:
        return top + plot_h * (1 - min(v, y_max) / y_max)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" aria-label="{escape(title)}">',
        f'<title>{escape(title)}</title>',
        f'<text x="{left}" y="14" class="chart-title" font-size="12" font-weight="bold">{escape(title)}</text>',
    ]
    for tick in _ticks(y_max):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                     'stroke="#e5e7eb" stroke-width="1"/>')
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="10" '
                     f'fill="#6b7280">{escape(fmt(tick))}</text>')
    for t, anchor in ((start, "start"), ((start + end) / 2, "middle"), (end, "end")):
        label = datetime.fromtimestamp(t, tz=timezone.utc).strftime("%H:%M")
        parts.append(f'<text x="{x(t):.1f}" y="{height - 8}" text-anchor="{anchor}" font-size="10" '
                     f'fill="#6b7280">{label}</text>')
    for i, s in enumerate(series):
        color = s.color or COLORS[i % len(COLORS)]
        runs: list[list[str]] = [[]]
        for t, v in s.points:
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(t):.1f},{y(v):.1f}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
            elif run:
                parts.append(f'<polyline class="series" data-label="{escape(s.label)}" fill="none" '
                             f'stroke="{color}" stroke-width="1.5" points="{" ".join(run)}"/>')
        parts.append(f'<text x="{width - right - 4 - 90 * (len(series) - 1 - i)}" y="14" text-anchor="end" '
                     f'font-size="10" fill="{color}">■ {escape(s.label)}</text>')
    if threshold is not None:
        parts.append(f'<line class="threshold" x1="{left}" x2="{width - right}" y1="{y(threshold):.1f}" '
                     f'y2="{y(threshold):.1f}" stroke="{THRESHOLD_COLOR}" stroke-dasharray="6 4" '
                     f'stroke-width="1.5" data-threshold="{threshold}"/>')
        parts.append(f'<text x="{width - right - 2}" y="{y(threshold) - 4:.1f}" text-anchor="end" font-size="10" '
                     f'fill="{THRESHOLD_COLOR}">threshold {escape(fmt(threshold))}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
