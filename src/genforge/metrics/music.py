"""Musical metrics: small pure functions of one piece, set-level comparisons, and the registered
wrappers that report them (extractor "symbolic").

A piece is one item: SATB codes [4, T] or a piano roll [88, T] (genforge.music.representation).
Boundary conventions, stated once: a feature that needs notes is NaN for a piece without any and
set-level means skip NaN; a single note has range 0 and entropy 0; a unison is not a crossing; an
octave between upper voices is not too wide; a rest in either voice between two onsets breaks a
succession, so no parallel is counted across it.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

from ..music import representation as rep
from ..music.voice_leading import FIFTH, OCTAVE, parallels
from .extractors import register_extractor
from .registry import EvalInputs, Value, register_metric

# Textbook SATB ranges (inclusive MIDI pitches; e.g. Aldwell & Schachter): S C4-A5, A F3-D5,
# T C3-A4, B E2-D4. Bach's basses reach C2 now and then, so chorales score a little above 0.
SATB_RANGES = ((60, 81), (53, 74), (48, 69), (40, 62))
MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])


def _sounding(item) -> np.ndarray:
    """Bool [128, T]: which MIDI pitches sound at each step."""
    item = np.asarray(item)
    grid = np.zeros((128, item.shape[1]), dtype=bool)
    for n in rep.item_to_notes(item):
        grid[n.pitch, n.start:n.end] = True
    return grid


def pitch_range(item) -> float:
    """Highest minus lowest pitch in semitones (0 for one note; NaN without notes)."""
    pitches = [n.pitch for n in rep.item_to_notes(item)]
    return float(max(pitches) - min(pitches)) if pitches else math.nan


def pitch_class_histogram(item) -> np.ndarray:
    """Share of notes (attacks, not duration) on each of the 12 pitch classes; zeros if none."""
    counts = np.bincount([n.pitch % 12 for n in rep.item_to_notes(item)], minlength=12)
    return counts / counts.sum() if counts.sum() else counts.astype(float)


def pitch_class_entropy(item) -> float:
    """Shannon entropy in bits of the pitch-class histogram (0..log2 12; NaN without notes)."""
    hist = pitch_class_histogram(item)
    if not hist.any():
        return math.nan
    p = hist[hist > 0]
    return float(-(p * np.log2(p)).sum())


def scale_consistency(item) -> float:
    """Largest share of notes inside one major scale (a natural minor scale is the same set as
    its relative major, so 12 scales cover all 24); NaN without notes."""
    hist = pitch_class_histogram(item)
    if not hist.any():
        return math.nan
    return float(max(hist[(MAJOR + tonic) % 12].sum() for tonic in range(12)))


def polyphony(item) -> float:
    """Mean number of distinct pitches sounding, over the steps where any sounds (NaN if none)."""
    counts = _sounding(item).sum(axis=0)
    return float(counts[counts > 0].mean()) if (counts > 0).any() else math.nan


def empty_beat_rate(item) -> float:
    """Share of beats (4 steps; a final partial beat counts) in which nothing sounds at all
    (1 for an all-rest piece; NaN for a piece of no steps)."""
    steps = np.asarray(item).shape[1]
    if steps == 0:
        return math.nan
    busy = _sounding(item).any(axis=0)
    beats = [busy[s:s + rep.STEPS_PER_QUARTER].any() for s in range(0, steps, rep.STEPS_PER_QUARTER)]
    return float(1 - np.mean(beats))


def note_density(item) -> float:
    """Notes attacked per 4/4 bar (0 for an all-rest piece; NaN for a piece of no steps)."""
    steps = np.asarray(item).shape[1]
    return len(rep.item_to_notes(item)) / (steps / rep.STEPS_PER_BAR) if steps else math.nan


FEATURES = {"pitch_range": pitch_range, "pitch_class_entropy": pitch_class_entropy,
            "scale_consistency": scale_consistency, "polyphony": polyphony,
            "empty_beat_rate": empty_beat_rate, "note_density": note_density}


# --- four-voice rules (SATB items only) ---------------------------------------------------------

def parallel_intervals(item, interval_class: int) -> int:
    """Parallel perfect intervals (FIFTH or OCTAVE, unisons included) between any two voices:
    at two successive steps where either voice attacks and both sound, with no rest in either
    between, both voices move the same way and the interval class is interval_class at both
    (genforge.music.voice_leading.parallels, which the discrete sampler's rules use too)."""
    return len(parallels(rep.satb_pitches(item), rep.satb_onsets(item), (interval_class,)))


def parallel_fifths(item) -> int:
    """Parallel fifths (and twelfths) between any voice pair; see parallel_intervals."""
    return parallel_intervals(item, FIFTH)


def parallel_octaves(item) -> int:
    """Parallel octaves and unisons between any voice pair; see parallel_intervals."""
    return parallel_intervals(item, OCTAVE)


def voice_crossing(item) -> float:
    """Share of steps, among those where two adjacent voices both sound, at which a lower voice
    is strictly above the voice over it (equal pitch is not a crossing); NaN if none."""
    pitches = rep.satb_pitches(item).astype(int)
    both = (pitches[:-1] >= 0) & (pitches[1:] >= 0)
    crossed = both & (pitches[1:] > pitches[:-1])
    steps = both.any(axis=0)
    return float(crossed.any(axis=0)[steps].mean()) if steps.any() else math.nan


def out_of_range(item, ranges=SATB_RANGES) -> float:
    """Share of notes outside their voice's range (SATB_RANGES, inclusive); NaN without notes."""
    notes = rep.satb_to_notes(item)
    if not notes:
        return math.nan
    return float(np.mean([not ranges[n.voice][0] <= n.pitch <= ranges[n.voice][1] for n in notes]))


def spacing_violations(item) -> float:
    """Share of steps, among those where soprano and alto or alto and tenor both sound, at which
    either pair is more than an octave apart (exactly 12 semitones is fine); NaN if none."""
    p = rep.satb_pitches(item).astype(int)
    pairs = [(0, 1), (1, 2)]
    sounding = [(p[u] >= 0) & (p[l] >= 0) for u, l in pairs]
    wide = [s & (p[u] - p[l] > 12) for s, (u, l) in zip(sounding, pairs)]
    steps = sounding[0] | sounding[1]
    return float((wide[0] | wide[1])[steps].mean()) if steps.any() else math.nan


RULES = {"parallel_fifths": parallel_fifths, "parallel_octaves": parallel_octaves,
         "voice_crossing": voice_crossing, "out_of_range": out_of_range,
         "spacing": spacing_violations}


# --- set-level comparisons ------------------------------------------------------------------------

def feature_values(items, name: str) -> np.ndarray:
    """One feature of every piece, float64 [N] (NaN where undefined)."""
    fn = FEATURES.get(name) or RULES[name]
    return np.array([fn(np.asarray(item)) for item in items], dtype=np.float64)


def _kde(samples: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gaussian KDE on an even grid, binned (a histogram on the grid convolved with the kernel):
    exact to the grid's spacing, which stays far below the bandwidth (see overlap_area)."""
    dx = grid[1] - grid[0]
    counts, _ = np.histogram(samples, bins=len(grid), range=(grid[0] - dx / 2, grid[-1] + dx / 2))
    half = min(int(math.ceil(5 * bandwidth / dx)), (len(grid) - 1) // 2)
    offsets = np.arange(-half, half + 1) * dx
    kernel = np.exp(-0.5 * (offsets / bandwidth) ** 2)
    return np.convolve(counts, kernel, mode="same") / (len(samples) * bandwidth * math.sqrt(2 * math.pi))


def _bandwidth(samples: np.ndarray, floor: float) -> float:
    """Scott's rule (std * n^(-1/5)), never below floor."""
    return max(float(samples.std(ddof=1)) * len(samples) ** -0.2 if len(samples) > 1 else 0.0, floor)


def overlap_area(generated: np.ndarray, reference: np.ndarray, points: int = 2000,
                 limit: int = 1000, seed: int = 0) -> float:
    """MGEval's overlap area (Yang & Lerch 2020): Gaussian KDEs of the intra-set distances
    |r_i - r_j| (i < j) of the reference and the inter-set distances |g_i - r_j|; the integral of
    their minimum, in [0, 1] (1: the generated set sits in the reference as the reference sits in
    itself). NaNs are dropped; NaN when fewer than 2 reference or 1 generated values remain; 1
    when every distance is equal (both densities the same point). Bandwidths never go below 1%
    of the distances' span, so near-constant sets do not make spikes the grid cannot resolve.
    Sets larger than `limit` are subsampled (seeded) first: the distances grow as n^2."""
    g, r = generated[~np.isnan(generated)], reference[~np.isnan(reference)]
    rng = np.random.default_rng(seed)
    g = g if len(g) <= limit else rng.choice(g, limit, replace=False)
    r = r if len(r) <= limit else rng.choice(r, limit, replace=False)
    if len(r) < 2 or len(g) < 1:
        return math.nan
    intra = np.abs(r[:, None] - r[None, :])[np.triu_indices(len(r), 1)]
    inter = np.abs(g[:, None] - r[None, :]).ravel()
    low, high = min(intra.min(), inter.min()), max(intra.max(), inter.max())
    if high - low == 0:
        return 1.0
    floor = 0.01 * (high - low)
    h_intra, h_inter = _bandwidth(intra, floor), _bandwidth(inter, floor)
    pad = 4 * max(h_intra, h_inter)
    grid = np.linspace(low - pad, high + pad, points)
    both = np.minimum(_kde(intra, grid, h_intra), _kde(inter, grid, h_inter))
    return float(min(1.0, both.sum() * (grid[1] - grid[0])))


def _bar_key(bar: np.ndarray, transpose: bool) -> tuple[bytes, int] | None:
    """A bar's identity (its canonical codes as bytes) and base pitch; None for a silent bar.
    Transposition-aware keys are the bar moved down so its lowest pitch is PITCH_LOW (or key 0)."""
    if rep.is_satb(bar.shape):
        bar = rep.canonical_satb(bar)
        if not (bar % rep.ONSET).any():
            return None
        base = int(rep.satb_pitches(bar)[rep.satb_pitches(bar) >= 0].min()) if transpose else 0
        shifted = rep.transpose_satb(bar, -(base - rep.PITCH_LOW)) if transpose else bar
        return shifted.tobytes(), base
    bar = bar.copy()
    bar[:, 0] = np.where(bar[:, 0] > 0, 2, 0)
    keys = np.flatnonzero(bar.any(axis=1))
    if not len(keys):
        return None
    base = int(keys[0]) if transpose else 0
    return np.roll(bar, -base, axis=0).tobytes(), base


class BarIndex:
    """Every bar of the training items, keyed for exact (optionally transposition-aware) lookup."""

    def __init__(self, training, transpose: bool = False):
        self.transpose, self.table = transpose, {}
        for i, item in enumerate(np.asarray(training)):
            for b in range(item.shape[1] // rep.STEPS_PER_BAR):
                key = _bar_key(item[:, b * rep.STEPS_PER_BAR:(b + 1) * rep.STEPS_PER_BAR], transpose)
                if key is not None:
                    self.table.setdefault(key[0], []).append((i, b, key[1]))

    def longest_run(self, item) -> tuple[int, int]:
        """(bars, training item): the longest run of consecutive bars of item equal to
        consecutive bars of one training item, at one transposition; (0, -1) when no bar matches.
        Silent bars never match."""
        item, best, where, runs = np.asarray(item), 0, -1, {}
        for b in range(item.shape[1] // rep.STEPS_PER_BAR):
            key = _bar_key(item[:, b * rep.STEPS_PER_BAR:(b + 1) * rep.STEPS_PER_BAR], self.transpose)
            now = {}
            for i, tb, base in (self.table.get(key[0], []) if key is not None else []):
                state = (i, tb, key[1] - base)
                now[state] = runs.get((i, tb - 1, key[1] - base), 0) + 1
                if now[state] > best:
                    best, where = now[state], i
            runs = now
        return best, where


def longest_copied_run(item, training, transpose: bool = False) -> int:
    """Bars in the longest run of item copied exactly (all voices) from one training item."""
    return BarIndex(training, transpose).longest_run(item)[0]


# --- registered wrappers --------------------------------------------------------------------------

def _mean_ci(values: np.ndarray) -> tuple[float, tuple[float, float] | None]:
    v = values[~np.isnan(values)]
    if len(v) == 0:
        return math.nan, None
    mean = float(v.mean())
    if len(v) < 2:
        return mean, None
    half = 1.96 * float(v.std(ddof=1)) / math.sqrt(len(v))
    return mean, (mean - half, mean + half)


def _np(items: torch.Tensor) -> np.ndarray:
    return items.detach().cpu().numpy()


def _summary(inputs: EvalInputs, table: dict) -> list[Value]:
    gen, ref = _np(inputs.generated), _np(inputs.reference_items)
    values = []
    for name in table:
        g, r = feature_values(gen, name), feature_values(ref, name)
        mean, ci = _mean_ci(g)
        values.append(Value(name, mean, ci, {"reference_mean": _mean_ci(r)[0],
                                             "undefined": int(np.isnan(g).sum()),
                                             "statistic": "mean over pieces"},
                            extractor="symbolic"))
    return values


@register_metric("music_features", "pitch range, pitch-class entropy, scale consistency, "
                 "polyphony, empty-beat rate and note density of generated music")
def _music_features(inputs: EvalInputs) -> list[Value]:
    return _summary(inputs, FEATURES)


@register_metric("voice_leading", "four-part rules: parallel fifths and octaves per piece, "
                 "voice crossing, out-of-range notes, spacing wider than an octave")
def _voice_leading(inputs: EvalInputs) -> list[Value]:
    if not rep.is_satb(tuple(inputs.generated.shape[1:])):
        return []
    return _summary(inputs, RULES)


@register_metric("music_overlap", "MGEval overlap area of each musical feature's distances: "
                 "generated vs reference, as the reference vs itself")
def _music_overlap(inputs: EvalInputs) -> list[Value]:
    gen, ref = _np(inputs.generated), _np(inputs.reference_items)
    names = list(FEATURES) + (list(RULES) if rep.is_satb(gen.shape[1:]) else [])
    areas = {n: overlap_area(feature_values(gen, n), feature_values(ref, n)) for n in names}
    values = [Value(f"overlap_{n}", a, None, {"method": "MGEval KDE overlap area"},
                    extractor="symbolic") for n, a in areas.items()]
    defined = [a for a in areas.values() if not math.isnan(a)]
    values.append(Value("overlap_mean", float(np.mean(defined)) if defined else math.nan, None,
                        {"features": names}, extractor="symbolic"))
    return values


MEMORISED_BARS = 2  # a run of more than this many identical bars counts as a copy (the
#                    issue's bar: chorales share one-bar cadences by the hundred)


@register_metric("music_memorisation", "longest run of bars copied exactly (all voices) from a "
                 "training item", needs_training=True)
def _music_memorisation(inputs: EvalInputs) -> list[Value]:
    train = _np(inputs.training.items)
    index = BarIndex(train)
    runs = np.array([index.longest_run(item)[0] for item in _np(inputs.generated)], dtype=np.float64)
    mean, ci = _mean_ci(runs)
    details = {"transposition_aware": False, "copy_above_bars": MEMORISED_BARS, "max": float(runs.max())}
    return [Value("copied_bars", mean, ci, details, extractor="symbolic", reference=len(train)),
            Value("copied_share", float((runs > MEMORISED_BARS).mean()), None, details,
                  extractor="symbolic", reference=len(train))]


class SymbolicFeatures:
    """The musical features as a feature extractor (kind "music"), so the registry's evaluation
    accepts music references; NaN features become 0 for distance-based metrics."""

    name, kind, fingerprint = "symbolic", "music", None
    dim = len(FEATURES)
    checksum = hashlib.sha256(("symbolic-v1:" + ",".join(FEATURES)).encode()).hexdigest()

    def features(self, items: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """float32 [N, dim]: FEATURES in order, per piece."""
        values = np.stack([feature_values(_np(items), n) for n in FEATURES], axis=1)
        return torch.from_numpy(np.nan_to_num(values)).float().reshape(len(items), self.dim)


@register_extractor("symbolic")
def _load_symbolic(weights: str | None = None, device="cpu") -> SymbolicFeatures:
    return SymbolicFeatures()
