"""Game levels: tile grids as uint8 [N, H, W] tile indices; models see one-hot [N, K, H, W] in [-1, 1].

A modality instance is bound to one tile vocabulary (a Legend): K, the file format written and the
colours drawn all follow from it. The registered `LEVEL` is unbound; `open()` returns a dataset whose
`vocabulary` is the legend as JSON (Legend.to_dict), and `LEVEL.bind(vocabulary)` gives the bound
modality that encodes, decodes, writes and previews (the model spec keeps the same vocabulary).
Continuous diffusion runs on the one-hot tensors and decoding takes the argmax over tiles.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .. import io
from ..errors import ConfigError, DataError
from ..levels import sources
from ..levels.formats import (LODE_RUNNER, SOKOBAN, KgrLevel, Legend, XsbLevel, format_grid,
                              symmetries, write_kgoldrunner, write_xsb)
from .base import Dataset, LoadReport, named_items

NAMED_SOURCES = ("sokoban", "lode-runner")
TILE_PIXELS = 12
# Colours by tile type: a tile's first specific type found here (else a colour from its char).
COLOURS = {"wall": (90, 70, 60), "floor": (225, 215, 190), "player": (40, 120, 230),
           "box": (200, 140, 40), "goal": (230, 60, 60), "ground": (60, 60, 60),
           "diggable": (170, 80, 50), "empty": (10, 10, 20), "rope": (200, 200, 200),
           "ladder": (120, 200, 80), "gold": (250, 210, 0), "enemy": (220, 40, 160),
           "solid": (80, 80, 80), "passable": (230, 230, 230)}
GENERIC = ("solid", "passable")
COMBINED = {("player", "goal"): (120, 60, 200), ("box", "goal"): (60, 170, 60)}


@dataclass
class LevelDataset(Dataset):
    """A Dataset of levels (vocabulary: the legend as JSON) that names where each item came from."""

    names: list[str] | None = None   # file, '#title' inside collections, '@window' when cropped

    @property
    def legend(self) -> Legend:
        return Legend.from_dict(self.vocabulary)


def legend_of(vocabulary: dict | None) -> Legend | None:
    """The Legend a vocabulary (Dataset.vocabulary, ModelSpec.vocabulary) describes, or None."""
    return Legend.from_dict(vocabulary) if vocabulary else None


def _size(value) -> tuple[int, int] | None:
    """None, 10, '10', '10x12' or (10, 12) -> (height, width)."""
    if value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[1]))
    parts = str(value).lower().split("x")
    try:
        return (int(parts[0]), int(parts[-1]))
    except ValueError:
        raise ConfigError(f"level size {value!r} must be N or HxW, e.g. 10 or 10x12") from None


def tile_colours(legend: Legend) -> np.ndarray:
    """uint8 [K, 3]: one colour per tile, by its tile types."""
    out = []
    for char, tags in zip(legend.chars, legend.tags):
        colour = COMBINED.get(tuple(t for t in tags if t in ("player", "box", "goal"))[:2])
        # a specific type (wall, gold) wins over a generic one (solid, passable)
        ranked = [t for t in tags if t not in GENERIC] + [t for t in tags if t in GENERIC]
        colour = colour or next((COLOURS[t] for t in ranked if t in COLOURS), None)
        if colour is None:
            colour = tuple(hashlib.sha256(char.encode()).digest()[:3])
        out.append(colour)
    return np.array(out, dtype=np.uint8)


class LevelModality:
    """Tile-grid levels; bound to a legend for everything but `open`."""

    name = "level"
    # Plain .txt grids are not claimed: they need a legend, so data.kind "level" names them.
    named_sources, extensions = NAMED_SOURCES, sources.SOKOBAN_EXTENSIONS
    default_metrics = ("level-playability", "level-novelty", "level-diversity",
                       "level-patterns", "level-tiles")
    default_extractor = "level-tiles"
    evaluation_samples = 500  # playability runs the solver on every level

    def reference_options(self, model) -> dict:
        """How evaluation reads the reference levels for a model: sized as its training data."""
        d = model.config.data
        return {"max_size": d.max_size, "level_fit": d.level_fit,
                "level_size": d.level_size or "x".join(map(str, model.spec.item_shape[-2:])),
                "level_align": d.level_align, "level_sets": d.level_sets, "legend": d.legend}

    def __init__(self, legend: Legend | None = None):
        self.legend = legend

    # -- the vocabulary --------------------------------------------------------------------
    def bind(self, vocabulary: dict) -> "LevelModality":
        """The modality for levels with this vocabulary (a dataset's or a model spec's)."""
        return LevelModality(legend_of(vocabulary)) if vocabulary else self

    def _legend(self) -> Legend:
        if self.legend is None:
            raise ConfigError("the level modality has no tile vocabulary yet: use "
                              "LEVEL.bind(dataset.vocabulary) or modality_for(spec)")
        return self.legend

    def model_shape(self, item_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """(K, H, W) the network sees for items of shape (H, W)."""
        return (self._legend().size, *item_shape[-2:])

    # -- data --------------------------------------------------------------------------------
    def open(self, data_config) -> LevelDataset:
        """Levels cfg.source names: sokoban, lode-runner, or a file or folder (see levels.sources).
        Reads cfg.max_size, cfg.level_fit (pad/crop/none), cfg.level_align, cfg.level_stride,
        cfg.level_sets, cfg.legend with getattr until DataConfig declares them."""
        cfg = data_config
        source, root = cfg.source, getattr(cfg, "root", None)
        if source == "sokoban":
            levels, skipped = sources.load_sokoban(root, getattr(cfg, "level_sets", "free"))
            legend = SOKOBAN
        elif source == "lode-runner":
            levels, skipped = sources.load_lode_runner(root)
            legend = LODE_RUNNER
        else:
            levels, skipped, legend = sources.load_path(source, getattr(cfg, "legend", None))
        found = len(levels) + len(skipped)
        mode = getattr(cfg, "level_fit", "pad")
        if mode not in ("pad", "crop", "none"):
            raise ConfigError(f"data.level_fit must be pad, crop or none, got {mode!r}")
        resolution = getattr(cfg, "resolution", None)
        items, names, too_big = sources.fit(
            levels, legend, mode, size=_size(getattr(cfg, "level_size", None) or resolution),
            max_size=_size(getattr(cfg, "max_size", None)),
            align=getattr(cfg, "level_align", "centre"), stride=getattr(cfg, "level_stride", None))
        # too-big levels are left out by design: only malformed ones count against max_bad_fraction
        report = LoadReport(found=found, loaded=len(items), skipped=sorted(skipped) + too_big,
                            unreadable=len(skipped))
        if not len(items):
            first = (f" (first: {report.skipped[0][0]}: {report.skipped[0][1]})"
                     if report.skipped else "")
            raise DataError(f"no usable levels in {source}{first}")
        bad = len(skipped) / found if found else 0.0
        limit = getattr(cfg, "max_bad_fraction", 1.0)
        if bad > limit:
            raise DataError(f"{len(skipped)} of {found} levels in {source} are malformed "
                            f"(first: {skipped[0][0]}: {skipped[0][1]}); more than "
                            f"{limit * 100:g}% (data.max_bad_fraction)")
        return LevelDataset(kind=self.name, items=torch.from_numpy(items), labels=None,
                            class_names=[], source=source, report=report,
                            vocabulary=legend.to_dict(), names=names)

    # -- tensors -----------------------------------------------------------------------------
    def to_model(self, items: torch.Tensor) -> torch.Tensor:
        """uint8 [N, H, W] -> float32 one-hot [N, K, H, W] with 1 for the tile and -1 elsewhere."""
        k = self._legend().size
        onehot = torch.nn.functional.one_hot(items.long(), k).permute(0, 3, 1, 2)
        return onehot.to(torch.float32) * 2 - 1

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        """float [N, K, H, W] -> uint8 [N, H, W]: the tile with the largest value (NaN loses)."""
        x = torch.nan_to_num(x.to(torch.float32), nan=-math.inf)
        return x.argmax(dim=1).to(torch.uint8)

    rows_are_parts = False  # a level's rows are space

    def augment_tokens(self, tokens: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each level under a random symmetry of its game (see levels.formats.symmetries): a
        rotated or mirrored Sokoban level is as playable as the original; Lode Runner has
        gravity, so only mirror images."""
        group = symmetries(self._legend(), tuple(tokens.shape[-2:]))
        picks = torch.randint(len(group), (len(tokens),), generator=generator,
                              device=generator.device).tolist()
        return torch.stack([group[k](t) for k, t in zip(picks, tokens)])

    def unique_tokens(self) -> tuple[int, ...]:
        """Tiles of which a level holds exactly one: those tagged player (Sokoban's @ and +, Lode
        Runner's spawn). The loader refuses levels with none or two, and so does the sampler."""
        legend = self._legend()
        return tuple(i for i, tags in enumerate(legend.tags) if "player" in tags)

    def rule_move_for(self, item_shape: tuple[int, ...]):
        """The discrete sampler's rule move (--rules), or None (levels.rules): Sokoban levels get a
        closed border, as many boxes as goals and no box stuck; Lode Runner levels no gold out of
        the runner's reach."""
        from ..levels.formats import LODE_RUNNER, SOKOBAN
        from ..levels.rules import lode_runner_move, sokoban_move
        return {SOKOBAN.chars: sokoban_move,
                LODE_RUNNER.chars: lode_runner_move}.get(self._legend().chars)

    def token_count(self, item_shape: tuple[int, ...]) -> int:
        """Symbols per position for the discrete family: the tiles."""
        return self._legend().size

    def to_tokens(self, items: torch.Tensor) -> torch.Tensor:
        """Tile indices are the tokens: long [N, H, W]."""
        return torch.as_tensor(items).long()

    def from_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.to(torch.uint8)

    # -- files -------------------------------------------------------------------------------
    def write(self, items: torch.Tensor, folder: Path, stems: list[str],
              metadata: list[dict] | None = None) -> list[Path]:
        """Each level in its game's format (.xsb for Sokoban, VGLC .txt otherwise, plus a
        KGoldrunner game file for 28x20 Lode Runner) and a PNG render beside it; returns the
        level files. Metadata goes into the XSB as a 'Genforge:' line and into each PNG."""
        legend = self._legend()
        folder = Path(folder)
        paths = []
        for i, item, stem in named_items(items, stems):
            grid = item.detach().cpu().numpy()
            meta = None if metadata is None else json.dumps(metadata[i], sort_keys=True)
            text = format_grid(grid, legend)
            if legend.chars == SOKOBAN.chars:
                extra = {"Genforge": meta} if meta else {}
                path = io.write_text(folder / f"{stem}.xsb",
                                     write_xsb([XsbLevel(text, stem, extra)]))
            else:
                path = io.write_text(folder / f"{stem}.txt", text)
                if legend.chars == LODE_RUNNER.chars and grid.shape == (20, 28):
                    kgr = KgrLevel(1, stem, text.splitlines())
                    io.write_text(folder / f"game_{stem}.txt", write_kgoldrunner([kgr], stem))
            image = self.render(grid)
            info = PngInfo()
            if meta:
                info.add_text("genforge", meta)
            io.write_with(folder / f"{stem}.png",
                          lambda tmp: image.save(tmp, format="PNG", pnginfo=info))
            paths.append(path)
        return paths

    def render(self, grid: np.ndarray, tile: int = TILE_PIXELS) -> Image.Image:
        """One level as an RGB picture, tile x tile pixels per square."""
        colours = tile_colours(self._legend())
        pixels = colours[np.asarray(grid, dtype=np.int64).clip(0, len(colours) - 1)]
        return Image.fromarray(pixels.repeat(tile, 0).repeat(tile, 1))

    def preview(self, items: torch.Tensor, columns: int | None = None) -> Image.Image:
        """A grid of rendered levels with 2 px of black between; float items are model output."""
        if items.is_floating_point():
            items = self.from_model(items)
        n = len(items)
        if n == 0:
            raise ValueError("preview needs at least one item")
        h, w = items.shape[-2] * TILE_PIXELS, items.shape[-1] * TILE_PIXELS
        pad, columns = 2, columns or math.ceil(math.sqrt(n))
        rows = math.ceil(n / columns)
        sheet = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + pad) + pad), 0)
        for k, item in enumerate(items):
            row, col = divmod(k, columns)
            sheet.paste(self.render(item.cpu().numpy()), (pad + col * (w + pad), pad + row * (h + pad)))
        return sheet


LEVEL = LevelModality()
