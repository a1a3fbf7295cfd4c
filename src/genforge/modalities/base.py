"""The seam between kinds of content and the rest of genforge.

A content kind (a modality) opens a dataset as an integer tensor of items, converts items to and
from the float tensors models see, writes items as files and draws a preview. Everything else a
kind *may* offer is declared here too, with the default a kind that does not offer it gets:
symbols for the discrete family, rules the sampler can mend, its own sampling defaults, checks of
generated items (playability), a watermark, audio, inputs for inpainting, how the domain encoder
reads it. Nothing above the seam probes a kind with hasattr; images, music and levels are peers,
and a contract test (tests/test_contract.py) runs over every registered kind.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..errors import ConfigError, DataError


@dataclass
class LoadReport:
    """What happened while reading a dataset: how many items were found, used and skipped, and why."""

    found: int = 0
    loaded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    unreadable: int | None = None  # of the skipped, the broken ones (None: all of them); the
    #                                others were left out by design (a 5/4 chorale, a trio)

    @property
    def broken(self) -> int:
        return len(self.skipped) if self.unreadable is None else self.unreadable

    @property
    def bad_fraction(self) -> float:
        return self.broken / self.found if self.found else 0.0

    def summary(self) -> str:
        text = f"{self.loaded} of {self.found} items loaded"
        if self.skipped:
            text += f", {len(self.skipped)} skipped (first: {self.skipped[0][0]}: {self.skipped[0][1]})"
        return text

    def to_dict(self) -> dict:
        return {"found": self.found, "loaded": self.loaded,
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}


@dataclass
class Dataset:
    """A whole dataset in memory: items as an integer tensor [N, ...] plus optional class labels,
    and what the loader knows about where each item came from (so nobody walks the folder again)."""

    kind: str                      # modality name, e.g. "image"
    items: torch.Tensor            # images: uint8 [N, C, H, W]
    labels: torch.Tensor | None    # int64 [N], or None when unlabelled
    class_names: list[str]
    source: str                    # what the user named: a path or a dataset name
    report: LoadReport = field(default_factory=LoadReport)
    vocabulary: dict = field(default_factory=dict)  # what decoding needs (a level's tile set)
    names: list[str] | None = None  # each item's origin: a file relative to the folder, a level
    #                                 '#title' inside a collection, '@window' when cropped
    files: list[Path] | None = None  # the files the loader read, in its order (the audit scans
    #                                  their bytes: file duplicates, C2PA); None for named data

    def __len__(self) -> int:
        return int(self.items.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.labels is not None else 0

    @property
    def item_shape(self) -> tuple[int, ...]:
        return tuple(self.items.shape[1:])

    @property
    def fingerprint(self) -> str:
        """sha256 over the item bytes and labels: names the exact training data in manifests."""
        digest = hashlib.sha256(self.kind.encode())
        digest.update(str(tuple(self.items.shape)).encode())
        digest.update(self.items.contiguous().numpy().tobytes())
        if self.labels is not None:
            digest.update(self.labels.contiguous().numpy().tobytes())
        if self.vocabulary:  # the same integers mean other things under another tile set
            digest.update(json.dumps(self.vocabulary, sort_keys=True).encode())
        return digest.hexdigest()

    def subset(self, keep: torch.Tensor) -> "Dataset":
        """The items where keep (bool [N]) is True, with their labels and names."""
        index = keep.nonzero().flatten().tolist()
        return Dataset(kind=self.kind, items=self.items[keep], class_names=self.class_names,
                       labels=None if self.labels is None else self.labels[keep],
                       source=self.source, report=self.report, vocabulary=self.vocabulary,
                       names=None if self.names is None else [self.names[i] for i in index],
                       files=self.files)


def named_items(items, stems: list[str]):
    """(index, item, stem) for writing items as files: as many stems as items, each a plain name."""
    if len(stems) != len(items):
        raise ValueError(f"{len(items)} items but {len(stems)} stems")
    for i, (item, stem) in enumerate(zip(items, stems)):
        if not stem or Path(stem).name != stem:
            raise ValueError(f"stem {stem!r} must be a plain file name")
        yield i, item, stem


@dataclass(frozen=True)
class SamplingPreset:
    """Sampling options that suit some items of a kind better than a family's own defaults,
    chosen by measurement (the comment at the declaration says which)."""

    family: str
    items: str                                   # which items, in words ("four-part music")
    applies: Callable[[Any], bool]               # the model's ModelSpec -> whether it applies
    options: dict[str, Any]


@dataclass(frozen=True)
class EncoderInput:
    """How the domain encoder (metrics.encoder, FD-<name>) reads one content kind."""

    accepts: Callable[[tuple], bool]                 # an item shape it can read
    input_shape: Callable[[tuple], tuple]            # item shape -> network input (C, H, W)
    prepare: Callable[[torch.Tensor], torch.Tensor]  # integer items -> float network input
    strong: Callable[[torch.Tensor, torch.Generator], torch.Tensor]  # a SimCLR view
    light: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None  # the classifier's
    #                                         (None: the kind has no labels to train on)
    dim: int                                          # default feature size
    stem: dict | None                                 # the Encoder's stem (None: the image stem)
    items: str                                        # what it reads, for error messages
    augment: dict | None = None                       # view settings recorded in the file
    transposes: bool = False                          # views transpose (music): validation also
    #                                                   reports retrieval across transpositions


class Modality:
    """What every content kind provides; registered by name in `genforge.modalities.MODALITIES`.

    Required: open, model_shape, to_model, from_model, write, preview. Optional capabilities
    have a default here that says the kind does not offer them (a clear ConfigError where a
    user asked for one, a neutral value where nothing was asked)."""

    name: str
    options_type: type                   # the kind's frozen data-options dataclass
    default_metrics: tuple[str, ...]
    named_sources: tuple[str, ...] = ()  # dataset names it reads (e.g. "bach-chorales")
    extensions: tuple[str, ...] = ()     # file extensions it reads, lower case with the dot
    default_extractor: str | None = None  # evaluation's feature extractor (None: domain encoder)
    evaluation_samples: int = 1000       # how many items evaluation draws by default
    family: str = "diffusion"            # the family measured best for this kind (--family auto)
    sampling_presets: tuple[SamplingPreset, ...] = ()

    def require(self, *, audio: bool = False, checks: str | None = None,
                display: bool = False) -> None:
        """Refuse, in one line and before any work, what a caller asks of this kind that it does
        not offer: audio (--wav), checks (named by the flags that asked, e.g. --repair) or
        display copies (--display-size)."""
        if audio and not self.has_audio:
            raise ConfigError(f"--wav renders music; this model makes {self.name} items")
        if display and not self.has_display_copies:
            raise ConfigError(f"--display-size makes upscaled copies of small images; this "
                              f"model makes {self.name} items")
        if checks and not self.has_checks:
            raise ConfigError(f"{checks} are for level models; this model makes {self.name} items")

    # -- files a user hands over ----------------------------------------------------------------
    @property
    def folder_extensions(self) -> tuple[str, ...]:
        """Extensions of the files a dataset folder of this kind may hold: its items' and what
        lies beside them (a level legend, solutions). Default: extensions."""
        return self.extensions

    def check_file(self, path: Path) -> None:
        """Refuse, with a one-line DataError naming the file, a file this kind would not read,
        judged cheaply (its name, first bytes or header) before an upload is kept; the full,
        bounded read happens when the data is opened. Default: by its extension."""
        if Path(path).suffix.lower() not in self.folder_extensions:
            raise DataError(f"{Path(path).name}: not a {self.name} file (expected "
                            f"{', '.join(self.folder_extensions)})")

    # -- required -------------------------------------------------------------------------------
    def open(self, data_config) -> Dataset:
        """Read the dataset the config names; raise DataError with a one-line message when it can't."""
        raise NotImplementedError

    def model_shape(self, item_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one item as to_model makes it (images: the same)."""
        raise NotImplementedError

    def to_model(self, items: torch.Tensor) -> torch.Tensor:
        """Integer items -> float tensor in the model's range ([-1, 1] for images)."""
        raise NotImplementedError

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        """Model output -> integer items (clamped and rounded)."""
        raise NotImplementedError

    def write(self, items: torch.Tensor, folder: Path, stems: list[str],
              metadata: list[dict] | None = None) -> list[Path]:
        """Write each item as a file named by its stem (with its metadata inside the file where
        the format allows); return the paths."""
        raise NotImplementedError

    def preview(self, items: torch.Tensor, columns: int | None = None) -> Image.Image:
        """One picture showing many items, for sample grids and progress previews."""
        raise NotImplementedError

    # -- the vocabulary -------------------------------------------------------------------------
    def bind(self, vocabulary: dict) -> "Modality":
        """This kind for data with the given vocabulary (a dataset's or a model's): what
        to_model, from_model, write and preview then use. Kinds without one: themselves."""
        return self

    # -- symbols, for the discrete family -------------------------------------------------------
    has_tokens: bool = False   # items are symbols (notes, tiles), not intensities
    rows_are_parts: bool = False  # rows sound together (a chorale's voices), not space

    def token_count(self, item_shape: tuple[int, ...]) -> int:
        """Symbols per position."""
        raise ConfigError(f"the discrete family models content made of symbols (music, levels); "
                          f"{self.name} data is continuous: use --family diffusion or gan")

    def to_tokens(self, items: torch.Tensor) -> torch.Tensor:
        """Integer items -> tokens long [N, H, W]."""
        self.token_count(tuple(items.shape[1:]))
        raise NotImplementedError

    def from_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens -> integer items."""
        self.token_count(tuple(tokens.shape[1:]))
        raise NotImplementedError

    def unique_tokens(self) -> tuple[int, ...]:
        """Symbols of which every item holds exactly one (a level's player); none by default."""
        return ()

    has_symmetries: bool = False  # augment_tokens moves items by the content's own symmetries

    def augment_tokens(self, tokens: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each item under a random symmetry of the content (a mirrored level)."""
        raise ConfigError(f"--augment symmetry applies to levels; {self.name} items have no "
                          "symmetries here")

    def rule_move_for(self, item_shape: tuple[int, ...]):
        """The discrete sampler's rule move (--rules) for items of this shape, or None: no rules."""
        return None

    # -- sampling -------------------------------------------------------------------------------
    def sampling_defaults(self, family: str, spec) -> dict[str, Any]:
        """Sampling options that suit this model's items (its ModelSpec: item shape, classes)
        better than the family's own defaults."""
        for preset in self.sampling_presets:
            if preset.family == family and preset.applies(spec):
                return dict(preset.options)
        return {}

    def resized(self, item_shape: tuple[int, ...], length: int) -> tuple[int, ...]:
        """The item shape for items `length` units long (music: bars), for models whose
        convolutions take any length."""
        raise ConfigError(f"--bars sets the length of music; this model makes {self.name} items")

    # -- checks of generated items --------------------------------------------------------------
    has_checks: bool = False  # check() says whether each item works (a level: playable)

    def check(self, items: torch.Tensor, *, repair: bool = False) -> tuple[torch.Tensor, list[dict]]:
        """Items (repaired when asked) and per item a record with a 'playable' verdict."""
        raise ConfigError(f"--repair and --playable-only are for level models; this model makes "
                          f"{self.name} items")

    # -- inpainting -----------------------------------------------------------------------------
    def read_given(self, path: str | Path, item_shape: tuple[int, ...],
                   **how: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Integer items [*item_shape] and a bool mask of the given entries, read from a user's
        file (a melody to harmonise, a partial level to complete)."""
        raise ConfigError(f"{self.name} models cannot be given part of an item to complete")

    def model_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """An item mask [N, *item_shape] as a mask over the model tensor [N, *model_shape]."""
        return mask

    def force_given(self, items: torch.Tensor, given: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
        """The given entries exactly, the generated ones elsewhere."""
        return torch.where(mask.bool(), given, items)

    # The noise level at which continuous inpainting starts: None, the model's sigma_max. One-hot
    # symbols are drowned by sigma ~10 already; starting there leaves fewer noisy steps in which
    # the free entries commit before the given ones count (tests/test_music_inpaint.py).
    inpaint_sigma_max: float | None = None

    # -- provenance and output ------------------------------------------------------------------
    def watermark(self, items: torch.Tensor, weights_sha256: str | None, enabled: bool, *,
                  signed: bool = True) -> tuple[torch.Tensor, dict]:
        """Items with an invisible watermark naming the model where the kind allows, and its
        record (signed: whether the files will be signed, which the record then points to).
        Default: none; provenance rests on the signed pack and the generation log."""
        rests = "the signed pack and the log" if signed else "the generation log"
        return items, {"applied": False, "reason": f"{self.name} items carry no pixel watermark; "
                       f"provenance rests on {rests}"}

    has_display_copies: bool = False  # display_copies upscales items for sharing

    def display_copies(self, items: torch.Tensor, size: int, resample: str) -> torch.Tensor | None:
        """Items upscaled for showing and sharing (shorter side at least `size`; resample:
        nearest or lanczos), or None where they carry the watermark as they are."""
        self.require(display=True)
        return None

    has_audio: bool = False

    def render_audio(self, items: torch.Tensor, folder: Path, stems: list[str]) -> str:
        """<stem>.wav per item; returns the engine used."""
        raise ConfigError(f"--wav renders music; this model makes {self.name} items")

    # -- evaluation -----------------------------------------------------------------------------
    def reference_options(self, model) -> dict[str, Any]:
        """Data options for the reference data evaluation compares a model with (music: the
        held-out test split in the model's length); none by default."""
        return {}

    def encoder_input(self) -> EncoderInput | None:
        """How the domain encoder reads this kind, or None when it cannot."""
        return None
