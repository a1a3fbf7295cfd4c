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
from ..levels import complete as completing
from ..levels import sources, splits
from ..levels.formats import (LODE_RUNNER, SOKOBAN, KgrLevel, Legend, LevelError, XsbLevel,
                              format_grid, read_legend, symmetries, write_kgoldrunner,
                              write_xsb)
from ..levels.playable import check_levels
from ..options import Declared, at_least, option
from .base import Dataset, LoadReport, Modality, SamplingPreset, named_items

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


@dataclass(frozen=True)
class LevelOptions(Declared):
    """How level files become items: the level kind's data options."""

    section = "data"
    max_size: str | None = option(None, "levels: leave out levels larger than N or HxW tiles "
                                  "(e.g. 10)")
    level_fit: str = option("pad", "levels: how levels of different sizes become one size: pad "
                            "with the game's filler tile (Sokoban: wall), crop into windows, or "
                            "none (all must be the same size)", choices=("pad", "crop", "none"))
    level_size: str | None = option(None, "levels: the padded size or crop window, N or HxW "
                                    "(default: --max-size, else the largest level)")
    level_align: str = option("centre", "levels: where a padded level sits",
                              choices=("centre", "top-left"))
    level_stride: int | None = option(None, "levels: crop stride (default: half the window)",
                                      check=at_least(1))
    level_sets: str = option("free", "levels: which Sokoban sets of cavepacker-data to read: free "
                             "(public domain and CC0: xsokoban, gri, mgerhardy), all (the GPL sets "
                             "too, read from your installed package), or set names, comma-separated")
    legend: str | None = option(None, "levels: the tile legend of a folder of text grids: a "
                                "legend JSON (VGLC format) or a game name (sokoban, lode-runner)")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("max_size", "level_size"):
            _size(getattr(self, name))  # one line naming the value when it is not N or HxW


def legend_of(vocabulary: dict | None) -> Legend | None:
    """The Legend a vocabulary (Dataset.vocabulary, ModelSpec.vocabulary) describes, or None."""
    return Legend.from_dict(vocabulary) if vocabulary else None


MAX_SIDE = 256  # tiles; larger levels are no game a tile model of this size learns


def _size(value) -> tuple[int, int] | None:
    """None, 10, '10', '10x12' or (10, 12) -> (height, width), each side 1..MAX_SIDE."""
    if value is None:
        return None
    if isinstance(value, int):
        value = str(value)
    parts = (list(value) if isinstance(value, (tuple, list)) else str(value).lower().split("x"))
    try:
        if len(parts) not in (1, 2) or not all(str(p).strip().isascii() and str(p).strip().isdigit()
                                               for p in parts):
            raise ValueError
        h, w = int(parts[0]), int(parts[-1])
        if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
            raise ValueError
    except ValueError:
        raise ConfigError(f"level size {value!r} must be N or HxW with sides 1..{MAX_SIDE}, e.g. "
                          "10 or 10x12") from None
    return (h, w)


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


LARGE_LEVEL = 256  # squares: above this a level reveals in more steps (see LevelModality)


def _is_large(spec) -> bool:
    return math.prod(tuple(spec.item_shape)[-2:]) > LARGE_LEVEL


class LevelModality(Modality):
    """Tile-grid levels; bound to a legend for everything but `open`."""

    name = "level"
    options_type = LevelOptions
    # Plain .txt grids are not claimed: they need a legend, so data.kind "level" names them.
    named_sources, extensions = NAMED_SOURCES, sources.SOKOBAN_EXTENSIONS
    default_metrics = ("level-playability", "level-novelty", "level-diversity",
                       "level-patterns", "level-tiles")
    default_extractor = "level-tiles"
    evaluation_samples = 500  # playability runs the solver on every level
    # On Sokoban the discrete family made 15% playable levels as drawn where continuous diffusion
    # on one-hot tiles with an argmax decode made 0.6% (benchmarks/bench_levels.py).
    family = "discrete"
    # The family's 32 reveal steps suit Sokoban's 10x10 (64 steps measured no better); Lode
    # Runner's 20x28 squares need more: on 300 validation levels 2x2-pattern KL 0.248 as drawn
    # at 32 steps, 0.231 at 100, 0.244 at 200 (after --rules 0.261 / 0.249 / 0.247).
    sampling_presets = (SamplingPreset("discrete", f"levels of more than {LARGE_LEVEL} squares",
                                       _is_large, {"steps": 100}),)
    inpaint_sigma_max = 10.0  # one-hot tiles: see Modality.inpaint_sigma_max
    has_tokens = True
    has_symmetries = True
    has_checks = True

    def reference_options(self, model) -> dict:
        """How evaluation reads the reference levels for a model: sized as its training data,
        the held-out test split when it trained on the train split (else its own split)."""
        d = model.config.data
        return {"split": "test" if d.split == "train" else d.split,
                "max_size": d.max_size, "level_fit": d.level_fit,
                "level_size": d.level_size or "x".join(map(str, model.spec.item_shape[-2:])),
                "level_align": d.level_align, "level_sets": d.level_sets, "legend": d.legend}

    def __init__(self, legend: Legend | None = None):
        self.legend = legend

    # a folder of levels may hold text grids, their legend and Sokoban solutions beside them
    folder_extensions = (*sources.SOKOBAN_EXTENSIONS, *sources.GRID_EXTENSIONS, ".sol", ".json")

    def check_file(self, path: Path) -> None:
        """A level file: text of bounded size without NUL bytes, or a legend that reads."""
        super().check_file(path)
        path = Path(path)
        if path.suffix.lower() == ".json":
            read_legend(path)
            return
        try:
            if "\0" in sources.read_text(path):
                raise DataError(f"{path.name}: binary data, not a level text file")
        except LevelError as err:
            raise DataError(f"{path.name}: {err}") from None

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
    def open(self, data_config) -> Dataset:
        """Levels cfg.source names: sokoban, lode-runner, or a file or folder (see levels.sources),
        fitted to one size as LevelOptions say."""
        cfg = data_config
        source = cfg.source
        if source == "sokoban":
            levels, skipped = sources.load_sokoban(cfg.root, cfg.level_sets)
            legend = SOKOBAN
        elif source == "lode-runner":
            levels, skipped = sources.load_lode_runner(cfg.root)
            legend = LODE_RUNNER
        else:
            levels, skipped, legend = sources.load_path(source, cfg.legend)
        found = len(levels) + len(skipped)
        every = len(levels)
        levels = splits.select(levels, legend, cfg.split)
        if not levels:
            raise DataError(f"no levels of {source} in the {cfg.split} split ({every} levels in "
                            "all; the split is fixed by each level's tiles): use --split all")
        items, names, too_big = sources.fit(
            levels, legend, cfg.level_fit, size=_size(cfg.level_size),
            max_size=_size(cfg.max_size), align=cfg.level_align, stride=cfg.level_stride)
        # too-big levels are left out by design: only malformed ones count against max_bad_fraction
        report = LoadReport(found=found, loaded=len(items), skipped=sorted(skipped) + too_big,
                            unreadable=len(skipped))
        if not len(items):
            first = (f" (first: {report.skipped[0][0]}: {report.skipped[0][1]})"
                     if report.skipped else "")
            raise DataError(f"no usable levels in {source}{first}")
        bad = len(skipped) / found if found else 0.0
        if bad > cfg.max_bad_fraction:
            raise DataError(f"{len(skipped)} of {found} levels in {source} are malformed "
                            f"(first: {skipped[0][0]}: {skipped[0][1]}); more than "
                            f"{cfg.max_bad_fraction * 100:g}% (data.max_bad_fraction)")
        return Dataset(kind=self.name, items=torch.from_numpy(items), labels=None,
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

    # -- checks and inpainting ---------------------------------------------------------------
    def check(self, items: torch.Tensor, *, repair: bool = False) -> tuple[torch.Tensor, list[dict]]:
        """Each level's playability (Sokoban: solved; Lode Runner: all gold reachable), after
        the structural repair when asked (levels.playable)."""
        return check_levels(items, self._legend(), repair=repair)

    def read_given(self, path, item_shape: tuple[int, ...],
                   **how) -> tuple[torch.Tensor, torch.Tensor]:
        """A partial level ('?' where tiles are to be generated) in the model's size."""
        grid, mask = completing.read_partial(path, self._legend(), tuple(item_shape[-2:]))
        return torch.from_numpy(grid), torch.from_numpy(mask)

    def model_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """A given square fixes every tile channel of the one-hot tensor there."""
        return mask[:, None].expand(mask.shape[0], self._legend().size, *mask.shape[1:])

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
