"""Level completion: a partial level whose unknown tiles are '?' becomes a mask of given tiles,
and a diffusion model fills in the rest by inpainting (sampling.inpaint), the given tiles exact."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..sampling import SeededNoise, conditional, karras_sigmas
from ..sampling.inpaint import sample_inpaint
from .formats import Legend, LevelError, parse_grid

UNKNOWN = "?"
# One-hot tiles are drowned by sigma ~10 already (as music's notes); fewer idle noisy steps.
SIGMA_MAX = 10.0


def read_partial(path: str | Path, legend: Legend, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Tile indices [H, W] and a bool mask of the given tiles from a text grid in the game's
    characters with '?' for tiles to generate (XSB titles and 'Key: value' lines are ignored).
    A smaller grid is placed top-left and the rest of the model's shape is left to generate."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable text level ({e})") from None
    rows = [r for r in text.splitlines()
            if r.strip() and not r.lstrip().startswith(";") and ": " not in r]
    if not rows:
        raise DataError(f"{path}: no level rows found (a grid of the game's characters and '?')")
    width = max(len(r) for r in rows)
    rows = [r.ljust(width, UNKNOWN) for r in rows]  # short rows: the rest is to generate
    h, w = shape
    if len(rows) > h or width > w:
        raise DataError(f"{path}: a {len(rows)}x{width} level does not fit this model's {h}x{w}")
    given = np.array([[c != UNKNOWN for c in r] for r in rows])
    filler = legend.filler
    try:
        grid = parse_grid("\n".join(r.replace(UNKNOWN, filler) for r in rows), legend)
    except LevelError as e:
        raise DataError(f"{path}: {e} (tiles are {''.join(legend.chars)!r}, '?' to generate)") from None
    full, mask = np.zeros(shape, np.uint8), np.zeros(shape, bool)
    full[:len(rows), :width], mask[:len(rows), :width] = grid, given
    return full, mask


def complete(module, modality, grid: np.ndarray, mask: np.ndarray, seeds: list[int], *,
             steps: int = 32, sigma_min: float = 0.002, sigma_max: float = SIGMA_MAX,
             resample: int = 2) -> torch.Tensor:
    """len(seeds) completions uint8 [N, H, W] of grid where mask is True; those tiles exact."""
    n = len(seeds)
    given = torch.from_numpy(grid)[None].expand(n, *grid.shape)
    known = modality.to_model(given)
    model_mask = torch.from_numpy(mask)[None, None].expand_as(known)  # every tile channel
    noise = SeededNoise(seeds)
    sigmas = karras_sigmas(steps, sigma_min, sigma_max)
    x = noise(known.shape[1:]) * sigmas[0]
    with torch.no_grad():
        x = sample_inpaint(conditional(module, None), x, sigmas, known, model_mask, noise=noise,
                           resample=resample)
    out = modality.from_model(x)
    return torch.where(torch.from_numpy(mask)[None], given, out)
