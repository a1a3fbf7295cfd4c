"""Symbolic music: the Bach chorales in music21 (`bach-chorales`) or a folder of MIDI, MusicXML
and Humdrum files, as SATB codes uint8 [N, 4, T] or piano rolls uint8 [N, 88, T].

Encodings, crops, splits and transposition are documented in genforge.music.representation and
genforge.music.dataset; the data options are MusicOptions below.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError, DataError
from ..music import augment as music_augment
from ..music import corpus as corpus_mod
from ..music import dataset as crops_mod
from ..music import harmonize as harmonizing
from ..music import representation as rep
from ..music import voice_leading
from ..music import writing
from ..options import Declared, between, option
from .base import Dataset, EncoderInput, LoadReport, Modality, SamplingPreset, named_items

MAX_BARS = 64


@dataclass(frozen=True)
class MusicOptions(Declared):
    """How music files become items: the music kind's data options."""

    section = "data"
    representation: str = option("satb", "music: satb (four voices on a 16th-note grid, as "
                                 "Coconet) or pianoroll (any polyphony)",
                                 choices=("satb", "pianoroll"))
    bars: int = option(4, "music: length of the training crops in 4/4 bars",
                       check=between(1, MAX_BARS))
    hop: int = option(1, "music: bars between the starts of two crops", check=between(1, MAX_BARS))
    transpose: int = option(6, "music: add copies of the training split transposed up to this "
                            "many semitones each way (within each voice's range; 0: none)",
                            check=between(0, 11))


def open_music(data_config, use_cache: bool = True) -> Dataset:
    """Read, crop, split and (for the training split) transpose the music data_config names."""
    cfg = data_config
    source = str(cfg.source)
    if source != corpus_mod.BACH and not Path(source).expanduser().exists():
        raise DataError(f"data source {source!r} not found: expected a folder or file of MIDI, "
                        f"MusicXML or Humdrum, or {corpus_mod.BACH!r}")
    corpus = corpus_mod.read_corpus(source, cfg.representation, use_cache=use_cache)
    report = LoadReport(found=corpus.found, loaded=len(corpus.pieces), skipped=list(corpus.skipped),
                        unreadable=corpus.unreadable)
    if corpus.found == 0:
        raise DataError(f"no music files found in {source} (looked for "
                        f"{', '.join(corpus_mod.EXTENSIONS)}, in sub-folders too)")
    if not corpus.pieces:
        first = f"first: {corpus.skipped[0][0]}: {corpus.skipped[0][1]}" if corpus.skipped else ""
        raise DataError(f"none of the {corpus.found} music files in {source} could be used ({first})")
    if corpus.unreadable / corpus.found > cfg.max_bad_fraction:
        raise DataError(f"{corpus.unreadable} of {corpus.found} files in {source} are not readable "
                        f"music; refusing to train (data.max_bad_fraction); fix or remove them")
    pieces = crops_mod.select_split(corpus.pieces, cfg.split)
    crops = crops_mod.crop_pieces(pieces, cfg.bars, cfg.hop)
    if cfg.split == "train" and cfg.transpose:
        crops = crops_mod.transpose_crops(crops, cfg.transpose)
    if len(crops.items) == 0:
        raise DataError(f"no {cfg.bars}-bar crops in the {cfg.split} split of {source} "
                        f"({len(pieces)} pieces there): use fewer bars or another split")
    return Dataset(kind="music", items=torch.from_numpy(crops.items), labels=None, class_names=[],
                   source=source, report=report)


# What the first bytes of a music file must be, by extension (text formats: no NUL bytes, and
# MusicXML opens with '<' after any byte-order mark or blank).
MIDI_MAGIC = (b"MThd", b"RIFF")
ZIP_MAGIC = b"PK\x03\x04"
XML_SUFFIXES = (".xml", ".musicxml")


def first_bytes_problem(path: Path) -> str | None:
    """Why a file's first bytes say it is not the music format its extension names, or None."""
    with open(path, "rb") as f:
        head = f.read(512)
    suffix = path.suffix.lower()
    if suffix in (".mid", ".midi"):
        return None if head.startswith(MIDI_MAGIC) else "not a MIDI file (no MThd header)"
    if suffix == ".mxl":
        return None if head.startswith(ZIP_MAGIC) else "not a compressed MusicXML file (no zip header)"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text
        return None
    if b"\0" in head:
        return "binary data, not a text format"
    if suffix in XML_SUFFIXES and not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "not XML (it does not begin with '<')"
    return None


def _is_satb(spec) -> bool:
    return rep.is_satb(tuple(spec.item_shape))


class MusicModality(Modality):
    """Symbolic music as integer items [N, 4, T] (SATB) or [N, 88, T] (piano roll)."""

    name = "music"
    options_type = MusicOptions
    default_metrics = ("music_features", "voice_leading", "music_overlap", "music_memorisation")
    named_sources, extensions = (corpus_mod.BACH,), corpus_mod.EXTENSIONS
    default_extractor = "symbolic"
    evaluation_samples = 1000
    # Within 30 CPU-minutes the discrete family matched the chorales' note density, range and
    # scale where EDM diffusion on one-hot planes stayed near noise (benchmarks/bench_music.py).
    family = "discrete"
    # Four-part pieces from a discrete model: MaskGIT order at temperature 1.25, the best of 11
    # settings on the validation chorales, and 32 steps: at 30 CPU-minutes of training they judge
    # as 64 (closer than the Markov chain on 9 of 22 measures against 8, harmonisation as close to
    # Bach) in half the time (benchmarks/README.md, "Masked sampling steps"; --rules is opt-in).
    sampling_presets = (SamplingPreset("discrete", "four-part music", _is_satb,
                                       {"sampler": "confidence", "steps": 32, "temperature": 1.25}),)
    inpaint_sigma_max = 10.0  # one-hot planes: see Modality.inpaint_sigma_max
    has_tokens = True

    def check_file(self, path: Path) -> None:
        """A music file by its extension and first bytes (parsing, bounded, comes later)."""
        super().check_file(path)
        problem = first_bytes_problem(Path(path))
        if problem:
            raise DataError(f"{Path(path).name}: {problem}")
    rows_are_parts = True  # voices (or keys) are parts sounding together, not space
    has_audio = True

    def reference_options(self, model) -> dict:
        """How evaluation reads the reference data for a model: the held-out test split,
        untransposed, in crops as long as the model's."""
        return {"split": "test", "transpose": 0,
                "bars": model.spec.item_shape[-1] // rep.STEPS_PER_BAR}

    def open(self, data_config) -> Dataset:
        """The chorales or the folder data_config.source names (see module docstring)."""
        return open_music(data_config)

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

    def rule_move_for(self, item_shape: tuple[int, ...]):
        """The discrete sampler's rule move (--rules) for items of this shape, or None: four-part
        pieces get their parallel fifths and octaves re-pitched (music.voice_leading)."""
        return voice_leading.repitch_move if rep.is_satb(tuple(item_shape)) else None

    def resized(self, item_shape: tuple[int, ...], length: int) -> tuple[int, ...]:
        """Pieces of `length` bars (the convolutions take any length)."""
        if not isinstance(length, int) or not 1 <= length <= MAX_BARS:
            raise ConfigError(f"--bars must be between 1 and {MAX_BARS}, got {length!r}")
        return (*item_shape[:-1], length * rep.STEPS_PER_BAR)

    def read_given(self, path, item_shape: tuple[int, ...], *, voices: tuple[int, ...] = (0,),
                   **how) -> tuple[torch.Tensor, torch.Tensor]:
        """SATB codes [4, T] of a melody (or of the given voices of a four-part file) and the
        mask of given entries; T is the file's whole bars (the model takes any length)."""
        codes, mask = harmonizing.read_given(path, voices)
        return torch.from_numpy(codes), torch.from_numpy(mask)

    def model_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """A given (voice, step) fixes that voice's whole pitch row and onset row at that step."""
        return harmonizing.model_mask(mask)

    def force_given(self, items: torch.Tensor, given: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
        """The given notes exactly; a generated hold that cannot continue becomes an attack."""
        return torch.from_numpy(harmonizing.force_given(np.asarray(items), np.asarray(given),
                                                        np.asarray(mask, dtype=bool)))

    def encoder_input(self) -> EncoderInput:
        """SATB music as the one-hot planes models see, with musical views (music.augment).
        64 features: the reference for a chorale model is the held-out test split, 251 four-bar
        crops of bach-chorales, and FD needs several times `dim` items for a stable covariance."""
        return EncoderInput(lambda shape: len(shape) == 2 and shape[0] == len(rep.VOICES),
                            rep.model_shape, _music_planes,
                            lambda x, g: music_augment.augment(x, music_augment.STRONG, g), None,
                            64, {"kernel": [4, 13], "stride": [2, 2]}, "SATB music [N, 4, T]",
                            augment=vars(music_augment.STRONG).copy(), transposes=True)

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


def _music_planes(items: torch.Tensor) -> torch.Tensor:
    """SATB codes [N, 4, T] -> float32 [N, 8, T, 48] in {-1, 1} on the items' device, channels-last."""
    x = rep.satb_to_model(items.cpu()).to(items.device)
    return x.contiguous(memory_format=torch.channels_last)


MUSIC = MusicModality()
