"""Small SVG plots for the evaluation report, drawn by pure functions (no plotting library, no
scripts): line charts of metrics over training steps and histograms of distances."""
from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass


def escape(value) -> str:
    """Text safe inside HTML and SVG (quotes too: it lands in attributes)."""
    return html.escape(str(value), quote=True)


_e = escape


@dataclass(frozen=True)
class Frame:
    """The plot area inside an SVG: everything drawn from data stays within it."""

    left: float = 64
    top: float = 12
    width: float = 420
    height: float = 200

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height


PLOT = Frame()
# Okabe & Ito's colour-blind-safe palette.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round numbers (1, 2, 2.5 or 5 x 10^k apart, at most `count` gaps between the data's ends)
    spanning [low, high]; low < high."""
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [k * step for k in range(first, last + 1)]


def _span(values: Sequence[float], fixed: tuple[float, float] | None = None) -> list[float]:
    """Ticks of an axis covering values (or `fixed`); constant or absent data gets a unit span."""
    low, high = fixed or ((min(values), max(values)) if values else (0.0, 1.0))
    if not high > low:
        pad = abs(low) * 0.1 or 0.5
        low, high = low - pad, high + pad
    return nice_ticks(low, high)


def _scale(value: float, ticks: list[float], start: float, length: float) -> float:
    return start + (value - ticks[0]) / (ticks[-1] - ticks[0]) * length


def _tick_text(value: float, ticks: list[float]) -> str:
    step = ticks[1] - ticks[0]
    return f"{round(value, max(0, -math.floor(math.log10(step)) + 1)):.6g}"


def _axes(x_ticks: list[float], y_ticks: list[float], x_label: str, y_label: str) -> list[str]:
    f = PLOT
    parts = [f'<rect x="{f.left}" y="{f.top}" width="{f.width}" height="{f.height}" '
             'fill="none" stroke="#888"/>']
    for v in x_ticks:
        x = _scale(v, x_ticks, f.left, f.width)
        parts.append(f'<line x1="{x:.1f}" y1="{f.bottom}" x2="{x:.1f}" y2="{f.bottom + 4}" '
                     f'stroke="#888"/><text x="{x:.1f}" y="{f.bottom + 16}" text-anchor="middle">'
                     f"{_tick_text(v, x_ticks)}</text>")
    for v in y_ticks:
        y = _scale(v, y_ticks, f.bottom, -f.height)
        parts.append(f'<line x1="{f.left - 4}" y1="{y:.1f}" x2="{f.right}" y2="{y:.1f}" '
                     f'stroke="#eee"/><text x="{f.left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{_tick_text(v, y_ticks)}</text>")
    parts.append(f'<text x="{f.left + f.width / 2}" y="{f.bottom + 34}" text-anchor="middle">'
                 f"{_e(x_label)}</text>")
    parts.append(f'<text transform="translate(14 {f.top + f.height / 2}) rotate(-90)" '
                 f'text-anchor="middle">{_e(y_label)}</text>')
    return parts


def _svg(parts: list[str], names: list[str], description: str, empty: bool) -> str:
    """Wrap plot parts with a legend (one row per name) below the axes."""
    f = PLOT
    top = f.bottom + 48
    for k, name in enumerate(names):
        y = top + 16 * k
        parts.append(f'<rect x="{f.left}" y="{y - 9}" width="12" height="10" '
                     f'fill="{COLOURS[k % len(COLOURS)]}" fill-opacity="0.7"/>'
                     f'<text x="{f.left + 18}" y="{y}">{_e(name)}</text>')
    if empty:
        parts.append(f'<text x="{f.left + f.width / 2}" y="{f.top + f.height / 2}" '
                     'text-anchor="middle">no data</text>')
    width, height = f.right + 16, top + 16 * len(names)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(description)}">'
            f"<title>{_e(description)}</title>{''.join(parts)}</svg>")


def svg_line_chart(series: dict[str, list[tuple[float, float]]], x_label: str, y_label: str, *,
                   y_range: tuple[float, float] | None = None) -> str:
    """Lines (with point markers) of y over x, one per named series, with axes and a legend."""
    clean = {name: sorted((float(x), float(y)) for x, y in points
                          if math.isfinite(x) and math.isfinite(y))
             for name, points in series.items()}
    xs = [x for points in clean.values() for x, _ in points]
    ys = [y for points in clean.values() for _, y in points]
    x_ticks = _span(xs)
    y_ticks = _span(ys, (min([*ys, y_range[0]]), max([*ys, y_range[1]])) if y_range else None)
    parts = _axes(x_ticks, y_ticks, x_label, y_label)
    for k, points in enumerate(clean.values()):
        colour = COLOURS[k % len(COLOURS)]
        xy = [(_scale(x, x_ticks, PLOT.left, PLOT.width),
               _scale(y, y_ticks, PLOT.bottom, -PLOT.height)) for x, y in points]
        if len(xy) > 1:
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                         f'stroke-opacity="0.8" points="{line}"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>' for x, y in xy]
    return _svg(parts, list(clean), f"{y_label} over {x_label}", not xs)


def svg_histogram(datasets: dict[str, list[float]], bins: int, x_label: str) -> str:
    """Overlaid, semi-transparent histograms on shared bins, each as a share of its own items
    (so sets of different sizes compare), with axes and a legend."""
    clean = {name: [float(v) for v in values if math.isfinite(v)]
             for name, values in datasets.items()}
    everything = [v for values in clean.values() for v in values]
    x_ticks = _span(everything)
    low, high = x_ticks[0], x_ticks[-1]
    bins = max(1, int(bins))
    width = (high - low) / bins
    shares = {}
    for name, values in clean.items():
        counts = [0] * bins
        for v in values:
            counts[min(bins - 1, max(0, int((v - low) / width)))] += 1
        shares[name] = [c / len(values) if values else 0.0 for c in counts]
    tallest = max((s for row in shares.values() for s in row), default=0.0)
    y_ticks = _span([], (0.0, tallest or 1.0))
    parts = _axes(x_ticks, y_ticks, x_label, "share of items")
    bar = PLOT.width / bins
    for k, row in enumerate(shares.values()):
        colour = COLOURS[k % len(COLOURS)]
        for b, share in enumerate(row):
            if share > 0:
                top = _scale(share, y_ticks, PLOT.bottom, -PLOT.height)
                parts.append(f'<rect x="{PLOT.left + b * bar:.1f}" y="{top:.1f}" '
                             f'width="{bar:.1f}" height="{PLOT.bottom - top:.1f}" '
                             f'fill="{colour}" fill-opacity="0.45"/>')
    return _svg(parts, list(clean), f"histogram of {x_label}", not everything)
