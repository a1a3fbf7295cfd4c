"""Where levels come from: cavepacker's Sokoban sets, KGoldrunner's games, folders of text grids;
and how levels of many sizes become one [N, H, W] array (padding or windows).

Readers never raise for one bad level: each returns the levels it could use and a list of
(name, reason) for the ones it skipped, which the modality puts in its LoadReport.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import lode_runner, sokoban
from .formats import (LEGENDS, LODE_RUNNER, SOKOBAN, Legend, LevelError, decode_lurd,
                      parse_grid, read_kgoldrunner, read_legend, read_xsb)

DATA_ENV = "GENFORGE_DATA"
CAVEPACKER_DIRS = (Path("/usr/share/games/cavepacker/maps"),)  # Debian: cavepacker-data
KGOLDRUNNER_DIRS = (Path("/usr/share/kgoldrunner/system"),      # Debian: kgoldrunner
                    Path("/usr/share/games/kgoldrunner/system"))
# cavepacker's README.maps: xsokoban and GRIGoRusha's gri* sets are public domain, Martin
# Gerhardy's CC0; microban, sasquatch (David W. Skinner) and the tutorial ship under the GPL.
FREE_SOKOBAN_SETS = ("xsokoban", "gri", "grigrspecial", "mgerhardy")
SOKOBAN_EXTENSIONS = (".xsb", ".sok")
GRID_EXTENSIONS = (".txt", ".lvl")

Skipped = list[tuple[str, str]]


@dataclass
class Level:
    """One level as read: where it came from, its tiles, and a known solution when shipped."""

    name: str               # file path, plus '#title' or '#number' inside collections
    grid: np.ndarray        # uint8 [H, W] tile indices
    solution: str | None = None
    group: str = ""         # the set or game it belongs to (e.g. "gri", "plws")


def search_dirs(defaults: tuple[Path, ...], sub: str, root: str | None) -> list[Path]:
    """Folders to look in, in order: root, $GENFORGE_DATA/<sub>, Debian's folders. Under root and
    $GENFORGE_DATA/<sub>, also their maps/ and system/ folders and a Debian tree unpacked there
    (`dpkg -x kgoldrunner_*.deb DIR` gives DIR/usr/share/kgoldrunner/system)."""
    bases = [Path(root).expanduser()] if root else []
    if os.environ.get(DATA_ENV):
        bases.append(Path(os.environ[DATA_ENV]).expanduser() / sub)
    dirs = []
    for base in bases:
        dirs += [base, base / "maps", base / "system"] + [base / d.relative_to("/") for d in defaults]
    return dirs + list(defaults)


def sokoban_set(path: Path) -> str:
    """cavepacker's set name of a file: 'microban01_0003.sok' -> 'microban01', 'gri0001' -> 'gri'."""
    return re.sub(r"_?\d+$", "", path.stem)


MAX_FILE_BYTES = 16 << 20  # a level file; cavepacker's largest is 5 KB, KGoldrunner's 300 KB


def read_text(path: Path) -> str:
    """A level file's text (undecodable bytes replaced); LevelError when it cannot be read or is
    larger than MAX_FILE_BYTES, so no reader holds an unbounded file."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise LevelError(f"unreadable ({err.strerror or err})") from None
    if len(data) > MAX_FILE_BYTES:
        raise LevelError(f"larger than {MAX_FILE_BYTES >> 20} MiB: not a level file")
    return data.decode("utf-8", errors="replace")


def read_sokoban_file(path: Path, skipped: Skipped) -> list[Level]:
    """Every well-formed level of an XSB/SOK file (with the solution from a .sol file beside it)."""
    try:
        found = read_xsb(read_text(path))
    except LevelError as err:
        skipped.append((str(path), str(err)))
        return []
    if not found:
        skipped.append((str(path), "no Sokoban board in the file"))
    sol = path.with_suffix(".sol")
    levels = []
    for k, xsb in enumerate(found, 1):
        name = f"{path}#{xsb.title or k}" if len(found) > 1 else str(path)
        try:
            if xsb.problem:  # a malformed Solution line: the level is skipped, not the folder
                raise LevelError(xsb.problem)
            grid = sokoban.fill_outside(parse_grid(xsb.board, SOKOBAN))
            reason = sokoban.check(grid)
            solution = xsb.solution
            if solution is None and len(found) == 1 and sol.exists():
                solution = decode_lurd(read_text(sol))
        except LevelError as err:
            reason = str(err)
        if reason:
            skipped.append((name, reason))
        else:
            levels.append(Level(name, grid, solution, sokoban_set(path)))
    return levels


def load_sokoban(root: str | None = None, sets: str = "free") -> tuple[list[Level], Skipped]:
    """cavepacker's levels: sets 'free' (public domain and CC0), 'all', or names joined by ','."""
    folder = next((d for d in search_dirs(CAVEPACKER_DIRS, "cavepacker", root)
                   if d.is_dir() and any(d.glob("*.sok"))), None)
    if folder is None:
        raise DataError("Sokoban levels not found: install them with 'apt-get install "
                        "cavepacker-data', or give data.root (a folder of .sok files)")
    wanted = (None if sets == "all" else FREE_SOKOBAN_SETS if sets == "free"
              else tuple(s.strip() for s in sets.split(",")))
    paths = sorted(p for p in folder.glob("*.sok") if wanted is None or sokoban_set(p) in wanted)
    if not paths:
        raise DataError(f"no Sokoban sets {sets!r} in {folder}")
    levels: list[Level] = []
    skipped: Skipped = []
    for path in paths:
        levels += read_sokoban_file(path, skipped)
    return levels, skipped


def load_lode_runner(root: str | None = None) -> tuple[list[Level], Skipped]:
    """Every level of KGoldrunner's games (game_*.txt), as VGLC Lode Runner tiles."""
    folder = next((d for d in search_dirs(KGOLDRUNNER_DIRS, "kgoldrunner", root)
                   if d.is_dir() and any(d.glob("game_*.txt"))), None)
    if folder is None:
        raise DataError("Lode Runner levels not found: install them with 'apt-get install "
                        "kgoldrunner', or unpack its .deb ('apt-get download kgoldrunner && dpkg "
                        "-x kgoldrunner_*.deb DIR') and give DIR as data.root or "
                        "$GENFORGE_DATA/kgoldrunner")
    levels: list[Level] = []
    skipped: Skipped = []
    for path in sorted(folder.glob("game_*.txt")):
        group = path.stem[len("game_"):]
        if group == "ende":  # the end-of-game screen, not a level
            continue
        try:
            found = read_kgoldrunner(read_text(path))
        except LevelError as err:
            skipped.append((str(path), str(err)))
            continue
        for kgr in found:
            name = f"{path}#{kgr.number:03d}"
            try:
                grid = parse_grid("\n".join(kgr.rows), LODE_RUNNER)
                reason = lode_runner.check(grid)
            except LevelError as err:
                reason = str(err)
            if reason:
                skipped.append((name, reason))
            else:
                levels.append(Level(name, grid, None, group))
    return levels, skipped


def resolve_legend(legend: str | Legend | None, folder: Path | None = None) -> Legend | None:
    """A legend by game name, by JSON path, or the one JSON file in the folder; None if none."""
    if isinstance(legend, Legend):
        return legend
    if legend:
        return LEGENDS[legend] if legend in LEGENDS else read_legend(legend)
    if folder is not None and folder.is_dir():
        found = sorted(folder.glob("*.json"))
        if len(found) == 1:
            return read_legend(found[0])
    return None


def load_path(source: str, legend: str | Legend | None = None) -> tuple[list[Level], Skipped, Legend]:
    """A file or folder of levels: .xsb/.sok as Sokoban, text grids with a legend (given, or the
    one .json file in the folder)."""
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"level source {source!r} not found: expected sokoban, lode-runner, or a "
                        "file or folder of levels")
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
        and p.suffix.lower() in SOKOBAN_EXTENSIONS + GRID_EXTENSIONS)
    chosen = resolve_legend(legend, path if path.is_dir() else path.parent)
    if chosen is None and all(p.suffix.lower() in SOKOBAN_EXTENSIONS for p in files):
        chosen = SOKOBAN
    if chosen is None:
        raise DataError(f"{source}: text grids need a legend: give data.legend (sokoban, "
                        "lode-runner, or a VGLC legend .json file) or put one .json in the folder")
    levels: list[Level] = []
    skipped: Skipped = []
    for p in files:
        if chosen.chars == SOKOBAN.chars:
            levels += read_sokoban_file(p, skipped)
            continue
        try:
            grid = parse_grid(read_text(p), chosen)
            reason = lode_runner.check(grid) if chosen.chars == LODE_RUNNER.chars else None
        except LevelError as err:
            reason = str(err)
        if reason:
            skipped.append((str(p), reason))
        else:
            levels.append(Level(str(p), grid, None, p.parent.name))
    if not files:
        raise DataError(f"no level files in {source} (looked for "
                        f"{', '.join(SOKOBAN_EXTENSIONS + GRID_EXTENSIONS)})")
    return levels, skipped, chosen


def pad(grid: np.ndarray, shape: tuple[int, int], filler: int, align: str = "centre") -> np.ndarray:
    """The grid inside a filler-filled array of shape, centred (extra row/column after) or top-left."""
    h, w = grid.shape
    out = np.full(shape, filler, dtype=np.uint8)
    top, left = ((shape[0] - h) // 2, (shape[1] - w) // 2) if align == "centre" else (0, 0)
    out[top:top + h, left:left + w] = grid
    return out


def windows(grid: np.ndarray, shape: tuple[int, int], stride: int) -> list[np.ndarray]:
    """Every shape-sized window of grid whose corner lies on the stride lattice (plus the last
    row and column of windows, so every tile is covered)."""
    h, w = grid.shape
    ys = sorted(set(range(0, h - shape[0] + 1, stride)) | {h - shape[0]})
    xs = sorted(set(range(0, w - shape[1] + 1, stride)) | {w - shape[1]})
    return [grid[y:y + shape[0], x:x + shape[1]] for y in ys for x in xs]


def fit(levels: list[Level], legend: Legend, mode: str = "pad", size: tuple[int, int] | None = None,
        max_size: tuple[int, int] | None = None, align: str = "centre",
        stride: int | None = None) -> tuple[np.ndarray, list[str], Skipped]:
    """Levels as one uint8 [N, H, W] array plus each row's name. Levels larger than max_size are
    skipped. 'pad' fills up to size (default: the largest level) with the legend's filler; 'crop'
    cuts size windows (larger levels) at stride (default half the window); 'none' needs one size."""
    skipped: Skipped = []
    if max_size is not None:
        keep = []
        for lv in levels:
            if lv.grid.shape[0] > max_size[0] or lv.grid.shape[1] > max_size[1]:
                skipped.append((lv.name, f"{lv.grid.shape[0]}x{lv.grid.shape[1]} is larger than "
                                f"{max_size[0]}x{max_size[1]}"))
            else:
                keep.append(lv)
        levels = keep
    if not levels:
        return np.zeros((0, *(size or max_size or (1, 1))), dtype=np.uint8), [], skipped
    size = size or max_size if mode == "pad" else size
    size = size or (max(lv.grid.shape[0] for lv in levels), max(lv.grid.shape[1] for lv in levels))
    filler = legend.index(legend.filler)
    arrays, names = [], []
    for lv in levels:
        h, w = lv.grid.shape
        if mode == "none" and (h, w) != tuple(size):
            skipped.append((lv.name, f"{h}x{w}, not {size[0]}x{size[1]}"))
        elif mode == "crop" and (h > size[0] or w > size[1]):
            grid = pad(lv.grid, (max(h, size[0]), max(w, size[1])), filler, align)
            cut = windows(grid, size, stride or max(1, min(size) // 2))
            arrays += cut
            names += [f"{lv.name}@{k}" for k in range(len(cut))]
        elif h > size[0] or w > size[1]:
            skipped.append((lv.name, f"{h}x{w} does not fit {size[0]}x{size[1]}"))
        else:
            arrays.append(pad(lv.grid, tuple(size), filler, align))
            names.append(lv.name)
    out = np.stack(arrays) if arrays else np.zeros((0, *size), dtype=np.uint8)
    return out, names, skipped
