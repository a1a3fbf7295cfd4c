"""Undoing what sharing does to an image's geometry before the watermark is read: rescaling (a
256-pixel display copy shown 1080 pixels wide) and small rotations (a photo of a screen, a
straightened scan).

The watermark repeats one TILE x TILE pattern whose spectrum fills the ring of radii BAND
(cycles per tile). Repeated with period P pixels, it puts its power on the lattice of frequencies
(u, v) / P, turned by the rotation angle: a comb of ~300 teeth (one per conjugate pair) that
neither the payload nor the key changes. The image is first whitened as the detector does it
(the band, divided by its local variance, so that host edges are damped and flat areas, where
the mark is alone, count), each octave of scale on a copy shrunk by it; then the power spectrum
is divided by its local mean. The estimate is the period and angle whose teeth hold the most
power against the spectrum half a tooth beside them (the geometric mean over the teeth, so a few
strong host lines cannot outvote the ring; beside along u and along v, the larger, so a line of
the host's own, such as the block edges of a nearest-neighbour upscale, gains nothing). Kutter
(1998, "Watermarking resisting to translation, rotation and scaling") used the autocorrelation
of a periodic mark the same way.

`views` returns the luminance as it is, then resampled so that the tile is TILE pixels again and
upright for each of the comb's few best estimates; watermark.detect reads every view and keeps
the decoder's best path, then makes one CRC check, so the search adds no false positives
(2^-16 per image, as before). Where the host drowns the comb (noise-like pixel art shown at
another size) the estimate fails and only the unchanged view can be read.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

TILE = 64
BAND = (6.0, 15.0)        # cycles per tile: the ring the mark fills (watermark.BAND)
OCTAVES = (1, 2, 4, 8)    # shrink factors searched: scales 0.7 to 11
ANGLES = 3.0              # degrees searched either way
LOCAL = 7                 # bins: the window of the mean power each power is divided by
MIN_GAIN = 0.75           # comb gain under which no view is added (unmarked: 0.6-0.75)
CANDIDATES = 3            # estimates tried at most; the decoder's path metric picks one
WHITEN_BAND = (4.0, 22.0)  # cycles per tile: BAND widened by half an octave either way
WHITEN_WINDOW, WHITEN_EPS = 9, 4.0  # as watermark.WHITEN_*: the local variance it divides by


def views(y: np.ndarray) -> list[np.ndarray]:
    """The luminance as it is, then resampled to undo each of the comb's best estimates of
    period and angle (up to CANDIDATES) that differs from the original's."""
    out = [y]
    for period, angle in estimate(y):
        if abs(period / TILE - 1) > 0.004 or abs(angle) > 0.1:
            out.append(normalise(y, period, angle))
    return out


def estimate(y: np.ndarray) -> list[tuple[float, float]]:
    """The tile lattice's likeliest (period in pixels, angle in degrees) in y, best first: the
    CANDIDATES strongest peaks of the comb's gain above MIN_GAIN. Each octave of scale is
    searched on a copy shrunk by it, so the comb sits at 45-91 pixels, in the band the mark was
    made for."""
    found = []  # (gain, period, angle)
    periods = TILE * np.exp(np.arange(-0.5, 0.5, 0.006) * np.log(2))
    angles = np.arange(-ANGLES, ANGLES + 1e-9, 0.5)
    for octave in OCTAVES:
        if min(y.shape) / octave < 2 * TILE:
            break
        shrunk = y if octave == 1 else _resize(y, (round(y.shape[1] / octave),
                                                   round(y.shape[0] / octave)))
        power = _whitened_power(whiten(shrunk))
        gain = _comb_gain(power, periods, angles, exact=False)
        for _ in range(CANDIDATES):
            i, j = np.unravel_index(np.argmax(gain), gain.shape)
            if gain[i, j] < MIN_GAIN:
                break
            gain[max(0, i - 5):i + 6, max(0, j - 2):j + 3] = 0.0  # the peak's neighbourhood
            # refine around the peak: a sixth of the steps
            fine_p = periods[i] * np.exp(np.arange(-0.006, 0.0061, 0.001))
            fine_a = angles[j] + np.arange(-0.5, 0.51, 0.05)
            fine = _comb_gain(power, fine_p, fine_a)
            k, m = np.unravel_index(np.argmax(fine), fine.shape)
            found.append((float(fine[k, m]), float(fine_p[k] * octave), float(fine_a[m])))
    found.sort(reverse=True)
    return [(period, angle) for _, period, angle in found[:CANDIDATES]]


def normalise(y: np.ndarray, period: float, angle: float) -> np.ndarray:
    """y turned back by angle and scaled so that a period becomes TILE pixels."""
    image = Image.fromarray(y.astype(np.float32), mode="F")
    if abs(angle) > 1e-3:
        # Pillow turns counter-clockwise for positive angles; the estimate is in the same sense
        image = image.rotate(-angle, resample=Image.Resampling.BICUBIC)
    scale = TILE / period
    size = (max(1, round(y.shape[1] * scale)), max(1, round(y.shape[0] * scale)))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS), dtype=np.float64)


def _resize(y: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    image = Image.fromarray(y.astype(np.float32), mode="F")
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS), dtype=np.float64)


def whiten(y: np.ndarray) -> np.ndarray:
    """The band the mark can be in at half an octave of scale either way, divided by its local
    variance: the host's edges are damped and flat areas, where the mark is alone, count."""
    h, w = y.shape
    radius = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]) * TILE
    band = (radius >= WHITEN_BAND[0]) & (radius <= WHITEN_BAND[1])
    b = np.fft.irfft2(np.fft.rfft2(y) * band, s=(h, w))
    return b / (np.maximum(box(b * b, WHITEN_WINDOW), 0.0) + WHITEN_EPS)


def _whitened_power(y: np.ndarray) -> np.ndarray:
    """|FFT|^2 of the windowed image over its local mean (LOCAL x LOCAL bins), centred."""
    h, w = y.shape
    window = np.outer(np.hanning(h), np.hanning(w))  # no edge cross in the spectrum
    spectrum = np.fft.fftshift(np.abs(np.fft.fft2((y - y.mean()) * window)) ** 2)
    local = box(spectrum, LOCAL)
    return spectrum / (local + 1e-12 + local.mean() * 1e-6)


def box(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over a k x k window (odd k, reflected edges) by summed-area table."""
    p = k // 2
    c = np.pad(np.pad(x, p, mode="reflect"), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    h, w = x.shape
    return (c[k:k + h, k:k + w] - c[:h, k:k + w] - c[k:k + h, :w] + c[:h, :w]) / (k * k)


def _lattice() -> np.ndarray:
    """The comb's teeth (u, v) in cycles per tile: the ring, one of each conjugate pair."""
    f = np.arange(-int(BAND[1]), int(BAND[1]) + 1)
    u, v = np.meshgrid(f, f, indexing="ij")
    r = np.hypot(u, v)
    keep = (r >= BAND[0]) & (r <= BAND[1]) & ((v > 0) | ((v == 0) & (u > 0)))
    return np.stack([u[keep], v[keep]], 1).astype(np.float64)


TEETH = _lattice()


def _comb_gain(power: np.ndarray, periods: np.ndarray, angles: np.ndarray,
               exact: bool = True) -> np.ndarray:
    """Geometric-mean whitened power on the comb over that half a tooth away, per (period,
    angle): a geometric mean, so a few teeth on the host's own lattice (a nearest-neighbour
    upscale's block grid) cannot outvote the ring. exact: bilinear, else the nearest bin."""
    h, w = power.shape
    log_power = np.log(power + 1e-6)
    a = np.deg2rad(angles)
    rot = np.stack([np.stack([np.cos(a), -np.sin(a)], -1), np.stack([np.sin(a), np.cos(a)], -1)],
                   -2)                                           # [angle, 2, 2]
    scale = 1.0 / periods[:, None, None]

    def sampled(pts: np.ndarray) -> np.ndarray:
        turned = np.einsum("aij,tj->ati", rot, pts)                # [angle, tooth, (u, v)]
        rows = turned[None, ..., 0] * scale * h + h // 2           # rows are u (vertical)
        cols = turned[None, ..., 1] * scale * w + w // 2
        return _sample(log_power, rows, cols, exact)

    # Between the teeth: half a tooth along u and along v, the larger. A tooth on a line of
    # the host's own (the block edges of a nearest-neighbour upscale run the whole height)
    # has that line beside it as well, and gains nothing.
    off = np.maximum(sampled(TEETH + [0.5, 0.0]), sampled(TEETH + [0.0, 0.5]))
    out = (sampled(TEETH) - off).mean(axis=-1)
    return np.exp(out)


def _sample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, exact: bool) -> np.ndarray:
    """image at fractional (rows, cols): bilinear, or the nearest pixel when not exact."""
    h, w = image.shape
    rows = np.clip(rows, 0, h - 1.001)
    cols = np.clip(cols, 0, w - 1.001)
    if not exact:
        return image[np.rint(rows).astype(int), np.rint(cols).astype(int)]
    r0, c0 = rows.astype(int), cols.astype(int)
    fr, fc = rows - r0, cols - c0
    return (image[r0, c0] * (1 - fr) * (1 - fc) + image[r0 + 1, c0] * fr * (1 - fc)
            + image[r0, c0 + 1] * (1 - fr) * fc + image[r0 + 1, c0 + 1] * fr * fc)
