"""Geometry for the server-rendered SVG charts of the statistics page (no JS library).

Pure Python: the template draws what these functions compute.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    y: float
    width: float


@dataclass
class BarChart:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar] = field(default_factory=list)

    @property
    def plot_x(self) -> int:
        return self.label_width + 6


def _plain(value: float) -> str:
    return f"{value:g}"


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    width: int = 560,
    label_width: int = 170,
    bar_height: int = 20,
    gap: int = 8,
    fmt: Callable[[float], str] = _plain,
    max_value: float | None = None,
) -> BarChart:
    """Horizontal bars: long Chinese labels read better on the left than under columns."""
    top = max_value if max_value is not None else max((v for _, v in items), default=0)
    plot = width - label_width - 6 - 56  # room on the right for the value text
    chart = BarChart(
        width=width,
        height=max(len(items), 1) * (bar_height + gap) + gap,
        label_width=label_width,
        bar_height=bar_height,
    )
    for i, (label, value) in enumerate(items):
        w = 0.0 if top <= 0 else plot * (value / top)
        chart.bars.append(
            Bar(
                label=label,
                value=value,
                text=fmt(value),
                y=gap + i * (bar_height + gap),
                width=max(w, 1.0 if value else 0.0),
            )
        )
    return chart


@dataclass(frozen=True)
class Point:
    label: str
    value: float
    text: str
    x: float
    y: float


@dataclass(frozen=True)
class Tick:
    y: float
    text: str


@dataclass
class LineChart:
    width: int
    height: int
    left: int
    bottom: float
    points: list[Point] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)

    @property
    def right(self) -> int:
        return self.width - 34


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def line_chart(
    items: Sequence[tuple[str, float]],
    *,
    width: int = 560,
    height: int = 220,
    left: int = 44,
    fmt: Callable[[float], str] = _plain,
    max_value: float | None = None,
    ticks: int = 4,
    integer: bool = False,
) -> LineChart:
    """A line over evenly spaced labels; `integer` keeps the y ticks on whole numbers."""
    top = max_value if max_value is not None else _nice_max(max((v for _, v in items), default=0))
    if integer:
        top = max(math.ceil(top), 1)
        ticks = min(ticks, int(top))
        top = math.ceil(top / ticks) * ticks
    plot_top, bottom = 24.0, float(height - 30)
    chart = LineChart(width=width, height=height, left=left, bottom=bottom)
    span = chart.right - left
    n = len(items)
    for i, (label, value) in enumerate(items):
        x = left + (span / 2 if n == 1 else span * i / (n - 1))
        y = bottom - (bottom - plot_top) * (value / top if top else 0)
        chart.points.append(Point(label=label, value=value, text=fmt(value), x=x, y=y))
    for k in range(ticks + 1):
        v = top * k / ticks
        chart.ticks.append(Tick(y=bottom - (bottom - plot_top) * k / ticks, text=fmt(v)))
    return chart
