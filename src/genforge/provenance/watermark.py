"""Invisible watermark for generated images: a 32-bit payload in the luminance, with a detector.

Design (measured by benchmarks/bench_watermark.py):

- One 64x64 tile of band-limited noise is repeated over the image (tile-periodic embedding, as in
  JAWS: Kalker et al. 1999, "A video watermarking system for broadcast monitoring"). The tile is a
  sum of 2-D sinusoids at radii 6..15 cycles per tile (0.09-0.23 cycles/pixel): above where most
  of a photo's energy lies, below the half-size resize cut-off (0.25) and JPEG's coarsest
  quantisation. Each sinusoid has a keyed random phase and carries the sign of one coded bit
  (spread spectrum: Cox et al. 1997, "Secure spread spectrum watermarking for multimedia").
- Payload: 32 bits + CRC-16 (CCITT), convolutionally encoded (constraint length 9, rate 1/4,
  generators 765/671/513/473 octal as in cdma2000, 3GPP2 C.S0002) to 224 bits, decoded by
  soft-decision Viterbi.
- Amplitude follows a noise-visibility mask (Voloshynovskiy et al. 1999, "A stochastic approach
  to content adaptive digital image watermarking"): full strength in texture, a third of it in
  flat regions, the RMS change never above `strength` (2.5 grey levels: PSNR >= 40 dB).
  embed() reads its own mark back; where texture drowns it (grass, gravel: more than 1/8 of the
  coded bits wrong) it embeds again at 1.2x the strength (PSNR >= 38.5 dB).
- Detection whitens the image (band-pass, then divides by the local in-band variance: filtering
  before correlation, Depovere et al. 1998, ICIP), folds it modulo the tile, and correlates with
  every coded bit's pattern at all 4,096 tile offsets at once by FFT. A crop only moves the tile
  grid, so the right offset recovers it: the 64 offsets with the largest sum of |soft value|
  go to a batched Viterbi decoder, whose best path metric picks one, and the CRC decides.
- False positives: one payload is CRC-checked per image and key, so an unmarked image passes
  with probability 2^-16 = 1.5e-5; the benchmark measured 0 in 2,000 trials (200 unmarked
  images x 10 keys). `confidence` is 1 minus that probability times the p-value of the sync
  statistic at the decoded offset (a Bonferroni bound over the 4,096 offsets against a normal
  fitted to the others; conservative on unmarked images).

- Geometry: before folding, provenance.resync reads the period and angle of the tile lattice
  from the image's spectrum, so a copy shown at 0.7 to 11 times its size or turned by up to 3
  degrees is resampled back; the unchanged image and up to three such views are decoded, and
  only the best path gets the CRC check.

What a pixel watermark cannot promise: it proves presence, not absence. A determined adversary
who knows the method (the default key is public) can estimate and subtract it, regenerate or
denoise the image, or defeat it geometrically: flips, larger rotations, non-uniform stretching,
crops that leave less than one 64x64 tile, or very strong compression. The minimum size is
128x128 (four tiles): every generated image measured carried its payload there, photos only
3 in 4 (100 of 100 at 256x256). Smaller images, such as genforge's 28x28 and 32x32 ones, cannot
carry it: their provenance rests on the C2PA manifest and the generation log, and their display
copies (generation.display: upscaled, marked, naming the native file) carry it for sharing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import ConfigError, DataError, GenforgeError
from . import resync

PAYLOAD_BITS = 32
CRC_BITS = 16
TILE = 64                        # pixels: the period of the pattern
MIN_SIZE = 2 * TILE              # below this the host drowns the mark (benchmarks/README.md)
BAND = (6.0, 15.0)               # radii in cycles per tile: 0.09-0.23 cycles/pixel
POLYNOMIALS = (0o765, 0o671, 0o513, 0o473)
MEMORY = 8                       # constraint length 9
N_CODED = (PAYLOAD_BITS + CRC_BITS + MEMORY) * len(POLYNOMIALS)  # 224
DEFAULT_KEY = 0x67656E66         # "genf"; public, so anyone can detect (and try to remove) it
DEFAULT_STRENGTH = 2.5           # RMS grey levels in texture: PSNR >= 20 log10(255 / 2.5) = 40.2 dB
VERSION = 1
METHOD = "genforge-tile-ss"

# Noise-visibility mask: amplitude ~ local activity (RMS of the high-pass in a 9x9 window, grey
# levels) over MASK_REF, floored at MASK_FLOOR / MASK_REF (flat areas) and capped at MASK_CAP.
MASK_FLOOR, MASK_REF, MASK_CAP = 2.0, 6.0, 2.0
WHITEN_WINDOW = 9                # pixels: window of the local in-band variance at detection
WHITEN_EPS = 4.0                 # grey levels^2: keeps flat (or JPEG-flattened) areas finite
BOOST = 1.2                      # strength factor for images that fail the self-check
SELF_CHECK_ERRORS = N_CODED // 8  # coded bits wrong on the fresh image above which to boost
CANDIDATES = 64                  # offsets the Viterbi decoder weighs
P_FLOOR = 1e-12                  # smallest synchronisation p-value reported


class WatermarkTooSmall(GenforgeError):
    """The image is smaller than min_size(): it cannot carry the watermark payload."""


@dataclass(frozen=True)
class Detection:
    """What detect() found.

    found: the CRC of the decoded payload checks out. payload: the 32-bit payload, else None.
    confidence: 1 - p_value when found, else 0. p_value: estimated probability that an unmarked
    image gives a detection at least this strong (at most 2^-16 when found, else 1).
    bit_errors_corrected: coded bits the Viterbi decoder overruled (of N_CODED = 224).
    p_sync: p-value of the synchronisation statistic at the decoded offset alone; small with
    found=False means a damaged watermark whose payload could not be read. offset: where the
    tile grid's origin lies in this image (row, column, modulo TILE).
    """

    found: bool
    payload: int | None
    confidence: float
    bit_errors_corrected: int | None
    p_value: float = 1.0
    p_sync: float = 1.0
    offset: tuple[int, int] | None = None
    method: str = METHOD
    version: int = VERSION


def min_size() -> tuple[int, int]:
    """Smallest (height, width) embed() accepts: 128x128, four tiles (see the module notes)."""
    return (MIN_SIZE, MIN_SIZE)


def fits(height: int, width: int) -> bool:
    """Whether an image of this size can carry the payload (at least min_size())."""
    return height >= MIN_SIZE and width >= MIN_SIZE


def embed(image: np.ndarray, payload: int, *, key: int = DEFAULT_KEY,
          strength: float = DEFAULT_STRENGTH) -> np.ndarray:
    """A watermarked copy of a uint8 HxW, HxWx3 or HxWx4 image (alpha untouched).

    payload: 32 bits (e.g. the model hash's prefix). strength: the most the luminance may change,
    as an RMS in grey levels (x1.2 for images that fail the self-check). Raises
    WatermarkTooSmall below min_size().
    """
    _check_image(image)
    key = _check_key(key)
    if not isinstance(payload, (int, np.integer)) or not 0 <= payload < 2 ** PAYLOAD_BITS:
        raise ConfigError(
            f"watermark payload must be an integer in [0, 2^{PAYLOAD_BITS}), got {payload!r}")
    if not isinstance(strength, (int, float, np.number)) or not 0 < strength <= 16:
        raise ConfigError(f"watermark strength must be in (0, 16] grey levels, got {strength}")
    h, w = image.shape[:2]
    if not fits(h, w):
        raise WatermarkTooSmall(
            f"a {h}x{w} image is below the watermark's minimum of {MIN_SIZE}x{MIN_SIZE} pixels; "
            "its provenance rests on the C2PA manifest and the generation log")
    code = _codeword(int(payload))
    out = _add_mark(image, code, key, strength)
    # Self-check: where texture drowns the mark (grass, gravel), its own detector reads many coded
    # bits wrong; one more try at BOOST times the strength keeps it readable after the issue's
    # transformations (PSNR >= 38.5 dB at the default strength).
    check = read_views([_luma(out)], key=key)  # as made: no resampling to undo
    if check.payload != payload or check.bit_errors_corrected > SELF_CHECK_ERRORS:
        out = _add_mark(image, code, key, strength * BOOST)
    return out


def detect(image: np.ndarray, *, key: int = DEFAULT_KEY) -> Detection:
    """Look for the key's watermark and read its payload (images under one tile have none).

    The image is read as it is and, where the tile lattice shows another scale or a small
    rotation (a display copy shown 1080 pixels wide, a turned photo), resampled to undo it
    (provenance.resync); of every view and offset the decoder's best path decides, and one
    CRC check is made, so the false-positive rate stays 2^-16."""
    _check_image(image)
    return read_views(resync.views(_luma(image)), key=key)


def read_views(views: list[np.ndarray], *, key: int = DEFAULT_KEY) -> Detection:
    """detect() on luminance views already made by resync.views (the same answer; a caller
    trying many keys on one image makes the views once)."""
    key = _check_key(key)
    best = None
    for y in views:
        if y.shape[0] < TILE or y.shape[1] < TILE:
            continue
        soft = _soft_values(_whiten(y), key).reshape(N_CODED, -1)
        # Offsets where the coded bits stand out; the decoder's path metric picks among them.
        sync = np.abs(soft).sum(axis=0)
        candidates = np.argsort(sync)[-CANDIDATES:]
        metrics, info = _viterbi(soft[:, candidates], PAYLOAD_BITS + CRC_BITS)
        if best is None or metrics.max() > best[0]:
            best = (metrics.max(), soft, sync, int(candidates[np.argmax(metrics)]), info)
    if best is None:
        return Detection(False, None, 0.0, None)
    _, soft, sync, offset, info = best
    p_sync = _p_value(sync, offset)
    grid = divmod(offset, TILE)
    data, check = info[:PAYLOAD_BITS], info[PAYLOAD_BITS:]
    if not np.array_equal(_crc16(data), check):
        return Detection(False, None, 0.0, None, p_sync=p_sync, offset=grid)
    errors = int(np.sum((soft[:, offset] < 0) != _conv_encode(info).astype(bool)))
    p_value = 2.0 ** -CRC_BITS * p_sync  # unmarked, the CRC and the sync are independent
    return Detection(True, _bits_to_int(data), 1.0 - p_value, errors, p_value, p_sync, grid)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images of the same shape (inf if equal)."""
    if a.shape != b.shape:
        raise DataError(f"psnr needs images of the same shape, got {a.shape} and {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def _add_mark(image: np.ndarray, code: np.ndarray, key: int, strength: float) -> np.ndarray:
    """The image with the codeword's tiled pattern added to its luminance under the mask."""
    h, w = image.shape[:2]
    mark = np.tile(_tile(code, key), (-(-h // TILE), -(-w // TILE)))[:h, :w]
    mark *= _mask(_luma(image)) * strength
    rms = float(np.sqrt(np.mean(mark ** 2)))
    if rms > strength:  # textured images: keep the PSNR promise
        mark *= strength / rms
    out = image.copy()
    colour = out if out.ndim == 2 else out[..., :3]  # a view: alpha stays as it is
    # The same change to R, G and B changes Y by exactly that and leaves Cb and Cr alone.
    colour[...] = np.clip(np.rint(colour + (mark if out.ndim == 2 else mark[..., None])), 0, 255)
    return out


# ----- payload coding ----------------------------------------------------------------------------

def _int_to_bits(value: int, n: int) -> np.ndarray:
    return np.array([(value >> (n - 1 - i)) & 1 for i in range(n)], dtype=np.uint8)


def _bits_to_int(bits: np.ndarray) -> int:
    return int("".join(str(int(b)) for b in bits), 2)


def _crc16(bits: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF) of a bit string."""
    reg = 0xFFFF
    for b in bits:
        feedback = ((reg >> 15) & 1) ^ int(b)
        reg = (reg << 1) & 0xFFFF
        if feedback:
            reg ^= 0x1021
    return _int_to_bits(reg, CRC_BITS)


@lru_cache(maxsize=1)
def _trellis() -> np.ndarray:
    """Coded bits out[state, input] of the convolutional code (state: the last MEMORY inputs)."""
    out = np.zeros((1 << MEMORY, 2, len(POLYNOMIALS)), dtype=np.uint8)
    for state in range(1 << MEMORY):
        for b in range(2):
            reg = (state << 1) | b
            out[state, b] = [bin(reg & p).count("1") & 1 for p in POLYNOMIALS]
    return out


def _conv_encode(bits: np.ndarray) -> np.ndarray:
    """Convolutional code with MEMORY zero tail bits, so the decoder ends in state 0."""
    out, state, coded = _trellis(), 0, []
    for b in np.concatenate([bits, np.zeros(MEMORY, np.uint8)]):
        coded.append(out[state, int(b)])
        state = ((state << 1) | int(b)) & ((1 << MEMORY) - 1)
    return np.concatenate(coded)


def _codeword(payload: int) -> np.ndarray:
    data = _int_to_bits(payload, PAYLOAD_BITS)
    return _conv_encode(np.concatenate([data, _crc16(data)]))


def _viterbi(soft: np.ndarray, n_info: int) -> tuple[np.ndarray, np.ndarray]:
    """Soft-decision Viterbi (1967) on each column of soft (coded bits x candidates; > 0 means
    bit 0): the best path metric of every column and the information bits of the best column."""
    signs = (1.0 - 2.0 * _trellis()).reshape(-1, len(POLYNOMIALS))  # (state, input) rows
    states, k, m = 1 << MEMORY, len(POLYNOMIALS), soft.shape[1]
    half = states // 2
    metric = np.full((states, m), -np.inf)
    metric[0] = 0.0
    steps = n_info + MEMORY
    # State 2j + b is reached with input b from j or from j + half: one butterfly per j.
    high = np.zeros((steps, half, 2, m), dtype=bool)
    for t in range(steps):
        branch = (signs @ soft[t * k:(t + 1) * k]).reshape(states, 2, m)
        low_path = metric[:half, None] + branch[:half]
        high_path = metric[half:, None] + branch[half:]
        high[t] = high_path > low_path
        metric = np.where(high[t], high_path, low_path).reshape(states, m)
        if t >= n_info:
            metric[1::2] = -np.inf  # tail: zeros only
    best = int(np.argmax(metric[0]))
    bits, state = np.zeros(steps, np.uint8), 0
    for t in range(steps - 1, -1, -1):
        bits[t] = state & 1
        state = (state >> 1) + half * int(high[t, state >> 1, state & 1, best])
    return metric[0], bits[:n_info]


# ----- keyed pattern -----------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _layout(key: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Band frequencies of the tile (one per conjugate pair), their coded bit and keyed phase."""
    f = np.fft.fftfreq(TILE, 1.0 / TILE)
    u, v = np.meshgrid(f, f, indexing="ij")
    radius = np.hypot(u, v)
    half_plane = (v > 0) | ((v == 0) & (u > 0))
    keep = half_plane & (radius >= BAND[0]) & (radius <= BAND[1])
    rows, cols = np.nonzero(keep)
    rng = np.random.default_rng(np.random.SeedSequence([key, VERSION]))
    order = rng.permutation(len(rows))  # spreads each coded bit over the band
    rows, cols = rows[order], cols[order]
    bit = np.arange(len(rows)) % N_CODED
    phase = np.exp(2j * np.pi * rng.random(len(rows)))
    return rows, cols, bit, phase


def _tile(code: np.ndarray, key: int) -> np.ndarray:
    """The TILE x TILE pattern for a codeword, unit RMS."""
    rows, cols, bit, phase = _layout(key)
    spectrum = np.zeros((TILE, TILE), complex)
    spectrum[rows, cols] = (1.0 - 2.0 * code[bit]) * phase
    spectrum[-rows % TILE, -cols % TILE] = np.conj(spectrum[rows, cols])
    # Parseval: 2 len(rows) unit coefficients give a mean square of 2 len(rows) / TILE^4.
    return np.fft.ifft2(spectrum).real * (TILE * TILE / math.sqrt(2 * len(rows)))


# ----- signal processing -------------------------------------------------------------------------

def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or not (
            image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        got = (f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray)
               else type(image).__name__)
        raise DataError(f"the watermark needs a uint8 HxW, HxWx3 or HxWx4 array, got {got}")


def _check_key(key: int) -> int:
    if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or key < 0:
        raise ConfigError(f"watermark key must be a non-negative integer, got {key!r}")
    return int(key)


def _luma(image: np.ndarray) -> np.ndarray:
    """Y of YCbCr (ITU-R BT.601, as JPEG uses) as float64; grey images as they are."""
    x = image.astype(np.float64)
    return x if x.ndim == 2 else x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def _mask(y: np.ndarray) -> np.ndarray:
    """Relative amplitude the eye tolerates at each pixel: more in texture, less where flat."""
    high = y - resync.box(y, 5)
    activity = np.sqrt(np.maximum(resync.box(high * high, 9), 0.0))
    mask = np.minimum(np.sqrt(activity ** 2 + MASK_FLOOR ** 2) / MASK_REF, MASK_CAP)
    return resync.box(mask, 5)  # smooth, so the pattern stays in its band


def _whiten(y: np.ndarray) -> np.ndarray:
    """The band of the image weighted by mask / local variance: the locally optimal correlator
    for a non-stationary host (textured areas hide the mark but also drown it)."""
    h, w = y.shape
    radius = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]) * TILE
    band = (radius >= BAND[0] - 1) & (radius <= BAND[1] + 1)
    b = np.fft.irfft2(np.fft.rfft2(y) * band, s=(h, w))
    var = np.maximum(resync.box(b * b, WHITEN_WINDOW), 0.0)
    return b * _mask(y) / (var + WHITEN_EPS)


def _fold(x: np.ndarray) -> np.ndarray:
    """Mean of the image over pixels with the same position modulo TILE (partial tiles too)."""
    h, w = x.shape
    index = ((np.arange(h) % TILE)[:, None] * TILE + np.arange(w) % TILE).ravel()
    total = np.bincount(index, weights=x.ravel(), minlength=TILE * TILE)
    count = np.bincount(index, minlength=TILE * TILE)
    return (total / np.maximum(count, 1)).reshape(TILE, TILE)


def _soft_values(x: np.ndarray, key: int) -> np.ndarray:
    """Soft value of each coded bit at each of the TILE x TILE offsets; ~N(0, 1) if unmarked."""
    rows, cols, bit, phase = _layout(key)
    spectrum = np.fft.fft2(_fold(x))
    # Normalise each frequency by the mean power of its ring: the host's spectrum falls with radius.
    f = np.fft.fftfreq(TILE, 1.0 / TILE)
    ring = np.rint(np.hypot(f[:, None], f[None, :])).astype(int).ravel()
    power = np.bincount(ring, weights=np.abs(spectrum.ravel()) ** 2) / np.bincount(ring)
    sigma = np.sqrt(power[ring.reshape(TILE, TILE)[rows, cols]]) + 1e-12
    z = np.zeros((N_CODED, TILE, TILE), np.complex64)
    z[bit, rows, cols] = spectrum[rows, cols] * np.conj(phase) / sigma
    count = np.bincount(bit, minlength=N_CODED)
    # Cross-correlation at all offsets at once: a shift of the tile is a phase ramp.
    return np.fft.ifft2(z).real * (TILE * TILE / np.sqrt(count / 2.0))[:, None, None]


def _p_value(sync: np.ndarray, offset: int) -> float:
    """Bonferroni p-value of an offset's sync, against a normal fitted to offsets away from it."""
    sync = sync.reshape(TILE, TILE)
    py, px = divmod(offset, TILE)
    rest = np.ones(sync.shape, dtype=bool)
    rest[np.ix_((py + np.arange(-3, 4)) % TILE, (px + np.arange(-3, 4)) % TILE)] = False
    mean, std = sync[rest].mean(), sync[rest].std()
    if not std > 0:
        return 1.0
    z = (sync[py, px] - mean) / std
    # The normal tail is only a model; below P_FLOOR it says more than it knows.
    return min(1.0, max(P_FLOOR, sync.size * 0.5 * math.erfc(z / math.sqrt(2.0))))
