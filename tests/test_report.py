"""The HTML evaluation report over a real (tiny) evaluation, and its hand-written SVG plots.

The evaluation is real end to end: Fashion-MNIST sample items, a simple but real feature (pixels
average-pooled to 7x7), and "generated" items that are held-out images plus a few exact copies of
training items, so the memorisation metric has true copies to find.
"""
from __future__ import annotations

import base64
import hashlib
import io
import re
import xml.etree.ElementTree as ET

import pytest
import torch
from PIL import Image

from genforge.config import DataConfig
from genforge.metrics import registry
from genforge.metrics.plots import PLOT, nice_ticks, svg_histogram, svg_line_chart
from genforge.metrics.report import history_charts, render_report, write_report
from genforge.modalities import IMAGE
from genforge.modalities.base import Dataset

SVG = "{http://www.w3.org/2000/svg}"
COPIED = (5, 17, 250, 1234, 2999)    # training items the "model" copies exactly
HOSTILE = "<script>alert('x')</script>"


class PooledPixels:
    """Pixels average-pooled to 7x7: a real, if simple, 49-dimensional feature."""

    name, kind, dim, fingerprint = "pooled-7x7", "image", 49, None
    checksum = hashlib.sha256(b"pooled-7x7").hexdigest()

    def features(self, items: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        grey = items.float().mean(1, keepdim=True) / 255
        return torch.nn.functional.adaptive_avg_pool2d(grey, 7).flatten(1)


def _evaluate(metrics: tuple[str, ...] = registry.DEFAULT_METRICS) -> registry.Evaluation:
    data = IMAGE.open(DataConfig(source="fashion-mnist-sample"))
    training = Dataset(kind="image", items=data.items[:3000], labels=None, class_names=[],
                       source=f"fashion-mnist-sample {HOSTILE}")
    held_out = data.items[3000:]

    def sample_fn(n: int) -> torch.Tensor:
        copies = training.items[list(COPIED)]
        return torch.cat([copies, held_out[:n - len(copies)]])

    protocol = registry.Protocol(generated=200, reference_limit=1000, fd_dim=16, fd_resamples=0,
                                 kid_subsets=5, kid_subset_size=100)
    return registry.evaluate(sample_fn, training, PooledPixels(), metrics=metrics,
                             protocol=protocol)


@pytest.fixture(scope="module")
def evaluation() -> registry.Evaluation:
    return _evaluate()


@pytest.fixture(scope="module")
def page(evaluation, tmp_path_factory) -> str:
    path = write_report(tmp_path_factory.mktemp("report") / "report.html", evaluation,
                        modality=IMAGE, title=f"tiny run {HOSTILE}")
    return path.read_text(encoding="utf-8")


def _section(page: str, key: str) -> str:
    return re.search(f'<section id="{key}">(.*?)</section>', page, re.S).group(1)


def test_every_metric_appears_with_its_value(evaluation, page):
    labels = {r.label for r in evaluation.records}
    assert {"FD-pooled-7x7", "KID-pooled-7x7", "precision", "recall", "density", "coverage",
            "memorised_share", "normalised_nn_distance"} <= labels
    table = _section(page, "metrics")
    for r in evaluation.records:
        row = re.search(f'<tr><th scope="row">{re.escape(r.label)}</th>(.*?)</tr>', table).group(1)
        assert f">{r.value:.4g}<" in row
        assert f">{r.generated} / {r.reference}<" in row
        if r.ci_low is not None:
            assert f">{r.ci_low:.4g} to {r.ci_high:.4g}<" in row
    assert "lower is better" in table and "higher means" in table


def test_header_names_the_protocol(evaluation, page):
    header = page.split("</header>")[0]
    record = evaluation.records[0]
    assert record.created in header and record.genforge_version in header
    assert record.protocol["reference_fingerprint"][:12] in header
    assert PooledPixels.checksum[:12] in header and "pooled-7x7" in header
    assert "16 feature dimensions" in header


def test_copies_are_shown_beside_their_training_items(evaluation, page):
    gallery = _section(page, "nearest")
    figures = re.findall(r'<figure class="pair( copy)?" data-generated="(\d+)" '
                         r'data-training="(\d+)"', gallery)
    assert 0 < len(figures) <= 16
    marked = {(int(g), int(t)) for copy, g, t in figures if copy}
    assert marked >= {(k, c) for k, c in enumerate(COPIED)}
    assert gallery.count("<strong>likely copy</strong>") == len(marked)
    share = evaluation.value("memorised_share")
    assert share * 200 >= len(COPIED)
    # Each figure holds two embedded PNGs, enlarged so a 28 px item is at least 56 px wide.
    src = re.search(r'src="data:image/png;base64,([^"]+)"', gallery).group(1)
    assert Image.open(io.BytesIO(base64.b64decode(src))).width >= 56


def test_sample_grid_is_an_enlarged_embedded_png(evaluation, page):
    grid = _section(page, "samples")
    src = re.search(r'src="data:image/png;base64,([^"]+)"', grid).group(1)
    image = Image.open(io.BytesIO(base64.b64decode(src)))
    assert image.width >= 8 * 56   # 64 items in 8 columns


def test_distance_histogram_against_the_training_baseline(page):
    distances = _section(page, "distances")
    svg = ET.fromstring(re.search(r"<svg.*?</svg>", distances, re.S).group(0))
    assert len(svg.findall(f"{SVG}rect")) > 10
    text = " ".join(t.text or "" for t in svg.iter(f"{SVG}text"))
    assert "generated → nearest training item" in text and "training → nearest other" in text


def test_history_with_steps_draws_a_line_chart(evaluation, page, tmp_path):
    assert "No training history yet" in _section(page, "history")
    history = [{**r.to_dict(), "step": step, "value": r.value * (1 + step / 1000)}
               for step in (100, 200, 300) for r in evaluation.records]
    history += [{**r.to_dict(), "step": None} for r in evaluation.records]  # not training
    html = write_report(tmp_path / "r.html", evaluation, modality="image",
                        history=history).read_text()
    section = _section(html, "history")
    assert "No training history yet" not in section
    assert section.count("<polyline") == len(evaluation.records)
    assert "FD-pooled-7x7" in section and "shares of items" in section


def test_history_needs_two_steps_per_label():
    one = {"metric": "fd", "label": "FD-x", "value": 3.0, "step": 10}
    assert history_charts([one]) == []
    assert history_charts([one, {**one, "value": None, "step": 20}]) == []
    assert history_charts([one, {**one, "step": 20}])[0][1] == {"FD-x": [(10, 3.0), (20, 3.0)]}


def test_text_is_escaped(page):
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_sections_without_data_say_why():
    html = render_report(_evaluate(metrics=("fd",)), modality=IMAGE)
    assert "No memorisation metric was run" in _section(html, "nearest")
    assert "No memorisation metric was run" in _section(html, "distances")
    assert "No training history yet" in _section(html, "history")
    assert "<svg" not in html and "KID" not in html.split("</header>")[0]


def test_written_atomically(evaluation, tmp_path):
    path = tmp_path / "deep" / "report.html"
    path.parent.mkdir()
    path.write_text("old")
    write_report(path, evaluation, modality=IMAGE)
    assert path.read_text().startswith("<!doctype html>")
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_self_contained(page):
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<script" not in page and "@import" not in page and "url(" not in page


# ----- SVG helpers ------------------------------------------------------------------------------

def _inside(x: float, y: float) -> bool:
    return (PLOT.left - 0.05 <= x <= PLOT.right + 0.05
            and PLOT.top - 0.05 <= y <= PLOT.bottom + 0.05)


def test_line_chart_maps_values_inside_the_plot_area():
    svg = ET.fromstring(svg_line_chart({"a": [(0, 1.5), (10, -2), (20, 40)],
                                        "b": [(5, 0.1), (15, 0.2)]}, "step", "value"))
    lines = svg.findall(f"{SVG}polyline")
    assert len(lines) == 2
    points = [tuple(map(float, p.split(","))) for line in lines
              for p in line.get("points").split()]
    assert len(points) == 5 and all(_inside(x, y) for x, y in points)
    xs = sorted(x for x, _ in points)
    assert xs[0] >= PLOT.left and xs[-1] <= PLOT.right and xs[0] < xs[-1]
    # Higher values are drawn higher up (smaller y).
    a = [tuple(map(float, p.split(","))) for p in lines[0].get("points").split()]
    assert a[2][1] < a[0][1] < a[1][1]


def test_histogram_bars_stay_inside_the_plot_area():
    svg = ET.fromstring(svg_histogram({"a": [0.1, 0.2, 0.2, 0.9], "b": [0.5] * 10}, 10, "d"))
    bars = [r for r in svg.findall(f"{SVG}rect") if r.get("fill-opacity") == "0.45"]
    assert bars
    for r in bars:
        x, y, w, h = (float(r.get(k)) for k in ("x", "y", "width", "height"))
        assert _inside(x, y) and _inside(x + w, y + h) and h > 0
    # "b" puts all of its items in one bin: the tallest bar (share 1) reaches near the top.
    assert min(float(r.get("y")) for r in bars) <= PLOT.top + PLOT.height * 0.2


@pytest.mark.parametrize("series", [{}, {"a": []}, {"a": [(3, 7.0)]}, {"a": [(1, 5), (2, 5)]},
                                    {"a": [(1, float("nan")), (2, float("inf"))]}])
def test_line_chart_survives_empty_and_constant_data(series):
    svg = svg_line_chart(series, "x", "y")
    ET.fromstring(svg)
    assert "nan" not in svg.lower() and "inf" not in svg.lower()


@pytest.mark.parametrize("data", [{}, {"a": []}, {"a": [2.0] * 5}, {"a": [0.0], "b": []},
                                  {"a": [float("nan")]}])
def test_histogram_survives_empty_and_constant_data(data):
    svg = svg_histogram(data, 20, "x")
    ET.fromstring(svg)
    assert "nan" not in svg.lower() and "inf" not in svg.lower()


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 1) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ticks = nice_ticks(13, 987)
    assert ticks[0] <= 13 and ticks[-1] >= 987 and ticks[1] - ticks[0] == 200
