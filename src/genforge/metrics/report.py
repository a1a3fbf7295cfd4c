"""The evaluation report: one self-contained HTML file a person can read offline.

Everything is inline: images as base64 PNG data URIs, plots as SVG drawn here by small pure
functions, a few lines of CSS; no scripts, fonts or links to fetch. The report knows nothing about
the kind of content beyond `modality.preview(items, columns)`, so music and levels draw their own.
"""
from __future__ import annotations

import base64
import io as bytes_io
import math
import time
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

from PIL import Image

from .. import io
from ..errors import ConfigError
from ..version import __version__
from .plots import escape as _e, svg_histogram, svg_line_chart
from .registry import COPY_RATIO, METRICS, Evaluation

GRID_ITEMS = 64          # generated items in the sample grid
GALLERY_PAIRS = 16       # closest generated/training pairs shown
MIN_CELL_PX = 56         # small items are enlarged (nearest neighbour) to at least this
HISTOGRAM_BINS = 30
COPY_TEXT = str(Fraction(COPY_RATIO).limit_denominator(100))   # "1/3"

# One line per value name: what the number measures and which way is better.
EXPLANATIONS = {
    "fd": "Fréchet distance between the feature distributions of generated and reference items: "
          "lower is closer; 0 means the same mean and covariance.",
    "kid": "Kernel distance between the feature distributions (unbiased, so it can dip below 0): "
           "lower is closer; about 0 means indistinguishable at this sample size.",
    "precision": "Share of generated items that fall among real ones in feature space: higher "
                 "means more realistic samples.",
    "recall": "Share of reference items that fall among generated ones: higher means the samples "
              "cover more of the data's variety.",
    "density": "How many real neighbourhoods each generated item falls in, relative to k: about 1 "
               "for samples like the data; higher means crowding where the data is dense.",
    "coverage": "Share of reference items with a generated item among their nearest neighbours: "
                "higher means more of the data is covered.",
    "memorised_share": "Share of generated items that are likely copies of a training item "
                       f"(nearest / second-nearest distance below {COPY_TEXT}): lower is better.",
    "normalised_nn_distance": "Median distance to the nearest training item relative to that "
                              "item's neighbourhood (Carlini et al. 2023): near 0 suggests "
                              "copying.",
}
# Values that are shares of items (0 to 1) share one history chart; others get one each.
SHARES = ("precision", "recall", "coverage", "memorised_share")

CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:62rem;padding:0 1rem;color:#222}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
dl.protocol{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem}
dl.protocol dt{color:#555}dl.protocol dd{margin:0}
table{border-collapse:collapse;width:100%}th,td{padding:.35rem .5rem;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
td.what{color:#555;font-size:.9em}
img{image-rendering:pixelated;display:block}
.gallery{display:flex;flex-wrap:wrap;gap:1rem}
figure.pair{margin:0;padding:.5rem;border:2px solid #ddd;border-radius:4px}
figure.pair.copy{border-color:#c00;background:#fff3f3}
.pair .items{display:flex;gap:.5rem}.pair .items div{font-size:.8em;color:#555}
figcaption{font-size:.9em;margin-top:.3rem}.copy figcaption strong{color:#c00}
p.absent{color:#666;font-style:italic}svg text{font:11px system-ui,sans-serif}
"""


def write_report(path: Path, evaluation: Evaluation, *, modality, history: Iterable[dict] = (),
                 title: str = "genforge evaluation",
                 sections: Iterable[tuple[str, str, str]] = ()) -> Path:
    """Write the evaluation as one self-contained HTML file (atomically); return its path.

    modality: the content kind's object (or its name), which draws items with `preview`.
    history: metric records as dicts (metrics.jsonl lines); those with a step are plotted.
    sections: further (id, heading, HTML) sections, after the metrics (a steps sweep).
    """
    if isinstance(modality, str):
        from ..modalities import MODALITIES
        if modality not in MODALITIES:
            raise ConfigError(f"unknown content kind {modality!r}: expected one of "
                              f"{', '.join(MODALITIES)}")
        modality = MODALITIES[modality]
    return io.write_text(path, render_report(evaluation, modality=modality, history=history,
                                             title=title, sections=sections))


def render_report(evaluation: Evaluation, *, modality, history: Iterable[dict] = (),
                  title: str = "genforge evaluation",
                  sections: Iterable[tuple[str, str, str]] = ()) -> str:
    """The report as an HTML string (see write_report)."""
    sections = [
        ("metrics", "Metrics", _metrics_table(evaluation)), *sections,
        ("samples", "Generated samples", _sample_grid(evaluation, modality)),
        ("nearest", "Nearest training items", _gallery(evaluation, modality)),
        ("history", "Metrics over training", _history(history)),
        ("distances", "Distance to the nearest training item", _distances(evaluation)),
    ]
    body = "".join(f'<section id="{key}"><h2>{name}</h2>\n{content}</section>\n'
                   for key, name, content in sections)
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n'
            f'{_header(evaluation, title)}{body}</body></html>\n')


# ----- sections ---------------------------------------------------------------------------------

def _number(value: float | None) -> str:
    """Four significant digits; "—" for a missing or undefined number."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.4g}"


def _absent(sentence: str) -> str:
    return f'<p class="absent">{_e(sentence)}</p>\n'


def _short(value) -> str:
    """Hashes (64 hex digits) shortened to their first 12."""
    text = str(value)
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text[:12] + "…"
    return text


def _protocol(evaluation: Evaluation) -> dict:
    if evaluation.records:
        return evaluation.records[0].protocol
    inputs = evaluation.inputs
    return {**inputs.protocol.to_dict(), "reference_source": inputs.reference.source,
            "reference_fingerprint": inputs.reference.fingerprint}


def _header(evaluation: Evaluation, title: str) -> str:
    records, p = evaluation.records, _protocol(evaluation)
    created = records[0].created if records else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    version = records[0].genforge_version if records else __version__
    reference = records[0].reference if records else len(evaluation.inputs.reference_items)
    extractors = dict.fromkeys((r.extractor, r.extractor_checksum[:12]) for r in records)
    rows = [("protocol", p.get("name")),
            ("samples", f"{len(evaluation.generated)} generated (asked for {p.get('generated')}), "
                        f"{reference} reference (limit {p.get('reference_limit')})"),
            ("seed", p.get("seed")),
            ("reference", f"{p.get('reference_source')} "
                          f"(fingerprint {str(p.get('reference_fingerprint', ''))[:12]})"),
            ("extractor", "; ".join(f"{n} (checksum {c})" for n, c in extractors) or "—")]
    ran = {r.metric for r in records}
    if "fd" in ran:
        rows.append(("Fréchet distance", f"{p.get('fd_dim') or 'all'} feature dimensions, "
                                         f"{p.get('fd_resamples')} bootstrap resamples"))
    if "kid" in ran:
        rows.append(("KID", f"{p.get('kid_subsets')} subsets of {p.get('kid_subset_size')}"))
    if "precision" in ran:
        rows.append(("k", f"{p.get('k_precision_recall')} for precision/recall, "
                          f"{p.get('k_density_coverage')} for density/coverage"))
    if p.get("sampler"):
        rows.append(("sampler", ", ".join(f"{k}={_short(v)}" for k, v in p["sampler"].items())))
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
    return (f"<header><h1>{_e(title)}</h1>\n<p>Evaluated {_e(created)} with genforge "
            f"{_e(version)}.</p>\n<dl class=\"protocol\">{items}</dl></header>\n")


def _metrics_table(evaluation: Evaluation) -> str:
    if not evaluation.records:
        return _absent("No metrics were run in this evaluation.")
    rows = []
    for r in evaluation.records:
        low, high = _number(r.ci_low), _number(r.ci_high)
        ci = f"{low} to {high}" if "—" not in (low, high) else "—"
        what = EXPLANATIONS.get(r.metric) or (METRICS[r.metric].description
                                              if r.metric in METRICS else "")
        rows.append(f'<tr><th scope="row">{_e(r.label)}</th><td class="num">{_number(r.value)}</td>'
                    f'<td class="num">{ci}</td><td class="num">{r.generated} / {r.reference}</td>'
                    f'<td>{_e(r.extractor)}</td><td class="what">{_e(what)}</td></tr>\n')
    return ("<table><thead><tr><th>metric</th><th>value</th><th>95% interval</th>"
            "<th>samples (generated / reference)</th><th>extractor</th><th>what it means</th>"
            f"</tr></thead><tbody>\n{''.join(rows)}</tbody></table>\n")


def _png(picture: Image.Image, columns: int, alt: str) -> str:
    """An <img> of the picture, enlarged (nearest neighbour) so each of its columns of items is
    at least MIN_CELL_PX wide, as a PNG data URI."""
    factor = max(1, math.ceil(MIN_CELL_PX * columns / picture.width))
    if factor > 1:
        picture = picture.resize((picture.width * factor, picture.height * factor),
                                 Image.Resampling.NEAREST)
    buffer = bytes_io.BytesIO()
    picture.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" width="{picture.width}" '
            f'height="{picture.height}" alt="{_e(alt)}">')


def _sample_grid(evaluation: Evaluation, modality) -> str:
    items = evaluation.generated[:GRID_ITEMS]
    if len(items) == 0:
        return _absent("The evaluation holds no generated items to show.")
    columns = math.ceil(math.sqrt(len(items)))
    return (f"<p>The first {len(items)} of {len(evaluation.generated)} generated items.</p>\n"
            f"{_png(modality.preview(items, columns), columns, 'grid of generated items')}\n")


def _gallery(evaluation: Evaluation, modality) -> str:
    inputs = evaluation.inputs
    pairs = list(getattr(inputs, "nearest_pairs", []))[:GALLERY_PAIRS]
    if not pairs:
        return _absent("No memorisation metric was run, so there are no nearest training items "
                       "to show (add 'memorisation' to the metrics).")
    share = next((r for r in evaluation.records if r.metric == "memorised_share"), None)
    space = share.details.get("space", "pixels") if share else "pixels"
    summary = (f" In all, {round(share.value * share.generated)} of {share.generated} generated "
               f"items ({share.value:.1%}) are likely copies." if share else "")
    figures = []
    for g, t, ratio in pairs:
        copy = ratio < COPY_RATIO
        both = (modality.preview(evaluation.generated[g:g + 1], 1),
                modality.preview(inputs.training.items[t:t + 1], 1))
        verdict = " — <strong>likely copy</strong>" if copy else ""
        figures.append(
            f'<figure class="pair{" copy" if copy else ""}" data-generated="{g}" '
            f'data-training="{t}" data-ratio="{ratio:.6g}"><div class="items">'
            f"<div>{_png(both[0], 1, f'generated item {g}')}generated #{g}</div>"
            f"<div>{_png(both[1], 1, f'training item {t}')}training #{t}</div></div>"
            f"<figcaption>ratio {ratio:.3f}{verdict}</figcaption></figure>\n")
    return (f"<p>The {len(pairs)} generated items closest to a training item (distances "
            f"measured in {_e(space)}), each beside its nearest training item. The ratio is the "
            "distance to the nearest training item over the distance to the second nearest; a copy "
            "sits far closer to one training item than to any other, so a ratio below "
            f"{COPY_TEXT} is marked as a likely copy (Yoon et al. 2023).{_e(summary)}</p>\n"
            f'<div class="gallery">\n{"".join(figures)}</div>\n')


def _history(history: Iterable[dict]) -> str:
    charts = history_charts(history)
    if not charts:
        return _absent("No training history yet: metrics are drawn over training steps once at "
                       "least two evaluations during training have been logged.")
    return "".join(f"<h3>{_e(name)}</h3>\n"
                   f"{svg_line_chart(series, 'training step', y_label, y_range=y_range)}\n"
                   for name, series, y_label, y_range in charts)


def history_charts(history: Iterable[dict]) -> list[tuple[str, dict, str, tuple | None]]:
    """(title, {label: [(step, value)]}, y label, y range) per chart: shares together on 0..1,
    every other label on its own; only labels with values at two or more steps."""
    points: dict[str, dict[int, float]] = {}
    metric_of: dict[str, str] = {}
    for r in history:
        r = r.to_dict() if hasattr(r, "to_dict") else r
        value = r.get("value")
        if r.get("step") is None or value is None or not math.isfinite(value):
            continue
        label = r.get("label") or r.get("metric")
        points.setdefault(label, {})[int(r["step"])] = float(value)  # a rerun step: the last wins
        metric_of[label] = r.get("metric", label)
    series = {label: sorted(by_step.items()) for label, by_step in points.items()
              if len(by_step) >= 2}
    shares = {k: v for k, v in series.items() if metric_of[k] in SHARES}
    charts = [(label, {label: line}, label, None)
              for label, line in series.items() if label not in shares]
    if shares:
        charts.append(("shares of items", shares, "share", (0.0, 1.0)))
    return charts


def _distances(evaluation: Evaluation) -> str:
    found = getattr(evaluation.inputs, "histograms", {})
    if not found.get("generated_to_train"):
        return _absent("No memorisation metric was run, so there are no nearest-neighbour "
                       "distances to draw.")
    datasets = {"generated → nearest training item": found["generated_to_train"]}
    if found.get("train_to_train"):
        datasets["training → nearest other training item"] = found["train_to_train"]
    return ("<p>How far generated items sit from their nearest training item, against how far "
            "training items sit from each other: mass far left of the baseline means copies.</p>\n"
            f"{svg_histogram(datasets, HISTOGRAM_BINS, 'distance to the nearest training item')}\n")
