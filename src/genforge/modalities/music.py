"""Symbolic music: the Bach chorales in music21 (`bach-chorales`) or a folder of MIDI, MusicXML
and Humdrum files, as SATB codes uint8 [N, 4, T] or piano rolls uint8 [N, 88, T].

Encodings, crops, splits and transposition are documented in genforge.music.representation and
genforge.music.dataset. Options are read from the data config with defaults until the config
grows the fields: representation ("satb" | "pianoroll"), bars (crop length, default 4), hop
(bars between crop starts, 1), split ("train" | "validation" | "test" | "all", "train") and
transpose (semitones each way added to the training split, 0 for none; default 6).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image

from ..errors import ConfigError, DataError
from ..music import corpus as corpus_mod
from ..music import dataset as crops_mod
from ..music import representation as rep
from ..music import voice_leading
from ..music import writing
from .base import Dataset, LoadReport, named_items

REPRESENTATIONS = ("satb", "pianoroll")
DEFAULTS = {"representation": "satb", "bars": 4, "hop": 1, "split": "train", "transpose": 6,
            "max_bad_fraction": 0.1}


def music_options(data_config) -> dict:
    """The music options of a data config (getattr with defaults), checked."""
    opts = {k: getattr(data_config, k, v) for k, v in DEFAULTS.items()}
    if opts["representation"] not in REPRESENTATIONS:
        raise ConfigError(f"data.representation must be one of {', '.join(REPRESENTATIONS)}, "
                          f"got {opts['representation']!r}")
    for name in ("bars", "hop"):
        if not isinstance(opts[name], int) or opts[name] < 1:
            raise ConfigError(f"data.{name} must be a whole number of at least 1, got {opts[name]!r}")
    if opts["split"] not in crops_mod.SPLITS:
        raise ConfigError(f"data.split must be one of {', '.join(crops_mod.SPLITS)}, "
                          f"got {opts['split']!r}")
    if not isinstance(opts["transpose"], int) or not 0 <= opts["transpose"] <= 11:
        raise ConfigError(f"data.transpose must be 0..11 semitones, got {opts['transpose']!r}")
    return opts


def open_music(data_config, use_cache: bool = True) -> Dataset:
    """Read, crop, split and (for the training split) transpose the music data_config names."""
    opts = music_options(data_config)
    source = str(data_config.source)
    if source != corpus_mod.BACH and not Path(source).expanduser().exists():
        raise DataError(f"data source {source!r} not found: expected a folder or file of MIDI, "
                        f"MusicXML or Humdrum, or {corpus_mod.BACH!r}")
    corpus = corpus_mod.read_corpus(source, opts["representation"], use_cache=use_cache)
    report = LoadReport(found=corpus.found, loaded=len(corpus.pieces), skipped=list(corpus.skipped),
                        unreadable=corpus.unreadable)
    if corpus.found == 0:
        raise DataError(f"no music files found in {source} (looked for "
                        f"{', '.join(corpus_mod.EXTENSIONS)}, in sub-folders too)")
    if not corpus.pieces:
        first = f"first: {corpus.skipped[0][0]}: {corpus.skipped[0][1]}" if corpus.skipped else ""
        raise DataError(f"none of the {corpus.found} music files in {source} could be used ({first})")
    if corpus.unreadable / corpus.found > opts["max_bad_fraction"]:
        raise DataError(f"{corpus.unreadable} of {corpus.found} files in {source} are not readable "
                        f"music; refusing to train (data.max_bad_fraction); fix or remove them")
    pieces = crops_mod.select_split(corpus.pieces, opts["split"])
    crops = crops_mod.crop_pieces(pieces, opts["bars"], opts["hop"])
    if opts["split"] == "train" and opts["transpose"]:
        crops = crops_mod.transpose_crops(crops, opts["transpose"])
    if len(crops.items) == 0:
        raise DataError(f"no {opts['bars']}-bar crops in the {opts['split']} split of {source} "
                        f"({len(pieces)} pieces there): use fewer bars or another split")
    return Dataset(kind="music", items=torch.from_numpy(crops.items), labels=None, class_names=[],
                   source=source, report=report)


class MusicModality:
    """Symbolic music as integer items [N, 4, T] (SATB) or [N, 88, T] (piano roll)."""

    name = "music"
    default_metrics = ("music_features", "voice_leading", "music_overlap", "music_memorisation")
    named_sources, extensions = (corpus_mod.BACH,), corpus_mod.EXTENSIONS
    default_extractor = "symbolic"
    evaluation_samples = 1000

    def reference_options(self, model) -> dict:
        """How evaluation reads the reference data for a model: the held-out test split,
        untransposed, in crops as long as the model's."""
        return {"split": "test", "transpose": 0,
                "bars": model.spec.item_shape[-1] // rep.STEPS_PER_BAR}

    def open(self, data_config) -> Dataset:
        """The chorales or the folder data_config.source names (see module docstring)."""
        return open_music(data_config)

    def bind(self, vocabulary: dict) -> "MusicModality":
        return self  # the item shape says which representation

    def model_shape(self, item_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """(C, H, W) of the float tensor models see for items of item_shape."""
        return rep.model_shape(tuple(item_shape))

    def to_model(self, items: torch.Tensor) -> torch.Tensor:
        """Integer items -> one-hot planes in {-1, 1}, [N, C, T, W] (see representation.model_shape)."""
        if rep.is_satb(tuple(items.shape[1:])):
            return rep.satb_to_model(items)
        return rep.roll_to_model(items)

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        """Model output -> integer items: argmax pitch per voice and step (or threshold at 0)."""
        if x.shape[1] == 2 * len(rep.VOICES):
            return rep.satb_from_model(x.detach().cpu())
        return rep.roll_from_model(x.detach().cpu())

    rows_are_parts = True  # voices (or keys) are parts sounding together, not space

    def token_count(self, item_shape: tuple[int, ...]) -> int:
        """Symbols per position for the discrete family (see representation.satb_to_tokens)."""
        return rep.SATB_TOKENS if rep.is_satb(tuple(item_shape)) else rep.ROLL_TOKENS

    def to_tokens(self, items: torch.Tensor) -> torch.Tensor:
        """Integer items -> tokens long, same shape: one symbol per voice (or key) and step."""
        if rep.is_satb(tuple(items.shape[1:])):
            return rep.satb_to_tokens(items)
        return torch.as_tensor(items).long()

    def from_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        if rep.is_satb(tuple(tokens.shape[1:])):
            return rep.satb_from_tokens(tokens)
        return tokens.clamp(0, rep.ROLL_TOKENS - 1).to(torch.uint8)

    def sampling_defaults(self, family: str, item_shape: tuple[int, ...]) -> dict:
        """Sampling options that suit this kind better than the family's own defaults. Four-part
        pieces from a discrete model: MaskGIT order, 64 steps, temperature 1.25, chosen among 11
        settings on the validation chorales (benchmarks/bench_music.py; --rules stays opt-in)."""
        if family == "discrete" and rep.is_satb(tuple(item_shape)):
            return {"sampler": "confidence", "steps": 64, "temperature": 1.25}
        return {}

    def rule_move_for(self, item_shape: tuple[int, ...]):
        """The discrete sampler's rule move (--rules) for items of this shape, or None: four-part
        pieces get their parallel fifths and octaves re-pitched (music.voice_leading)."""
        return voice_leading.repitch_move if rep.is_satb(tuple(item_shape)) else None

    def write(self, items: torch.Tensor, folder: Path, stems: list[str],
              metadata: list[dict] | None = None) -> list[Path]:
        """Per item: <stem>.mid and <stem>.musicxml (metadata inside both) and <stem>.png;
        returns the .mid paths."""
        folder = Path(folder)
        paths = []
        for i, item, stem in named_items(items, stems):
            item = item.detach().cpu().numpy()
            meta = metadata[i] if metadata is not None else None
            paths.append(writing.write_midi(item, folder / f"{stem}.mid", meta))
            writing.write_musicxml(item, folder / f"{stem}.musicxml", meta, title=stem)
            writing.write_png(item, folder / f"{stem}.png")
        return paths

    def render_audio(self, items: torch.Tensor, folder: Path, stems: list[str]) -> str:
        """<stem>.wav per item, with FluidSynth and the General MIDI sound font when installed,
        else the built-in synthesiser; returns the engine used."""
        from ..music.render import render_wav
        engine = "builtin"
        for item, stem in zip(items, stems):
            engine = render_wav(item.numpy(), Path(folder) / f"{stem}.wav")
        return engine

    def preview(self, items: torch.Tensor, columns: int | None = None) -> Image.Image:
        """A grid of piano rolls with 4 px of grey between them; float items are model output."""
        if items.is_floating_point():
            items = self.from_model(items)
        if len(items) == 0:
            raise ValueError("preview needs at least one item")
        rolls = [writing.piano_roll_image(item.numpy()) for item in items]
        w, h = rolls[0].size
        pad, columns = 4, columns or math.ceil(math.sqrt(len(rolls)))
        rows = math.ceil(len(rolls) / columns)
        grid = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + pad) + pad), (128, 128, 128))
        for k, roll in enumerate(rolls):
            row, col = divmod(k, columns)
            grid.paste(roll, (pad + col * (w + pad), pad + row * (h + pad)))
        return grid


MUSIC = MusicModality()
