"""Level completion's level side: a partial level whose unknown tiles are '?' becomes the given
tiles and their mask; the model's family fills in the rest (generation.inpaint), the given tiles
exact."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .formats import Legend, LevelError, parse_grid

UNKNOWN = "?"


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
