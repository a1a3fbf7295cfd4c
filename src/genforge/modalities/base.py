"""The seam between kinds of content and the rest of genforge.

A modality opens a dataset as a uint8/int tensor of items, converts items to and from the
float tensors models see, writes items as files and draws a preview. Images, music and levels are
peers behind this seam; nothing above it knows which one it holds.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from PIL import Image


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
    """A whole dataset in memory: items as an integer tensor [N, ...] plus optional class labels."""

    kind: str                      # modality name, e.g. "image"
    items: torch.Tensor            # images: uint8 [N, C, H, W]
    labels: torch.Tensor | None    # int64 [N], or None when unlabelled
    class_names: list[str]
    source: str                    # what the user named: a path or a dataset name
    report: LoadReport = field(default_factory=LoadReport)
    vocabulary: dict = field(default_factory=dict)  # what decoding needs (a level's tile set)

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


def named_items(items, stems: list[str]):
    """(index, item, stem) for writing items as files: as many stems as items, each a plain name."""
    if len(stems) != len(items):
        raise ValueError(f"{len(items)} items but {len(stems)} stems")
    for i, (item, stem) in enumerate(zip(items, stems)):
        if not stem or Path(stem).name != stem:
            raise ValueError(f"stem {stem!r} must be a plain file name")
        yield i, item, stem


class Modality(Protocol):
    """What every content kind provides. Registered by name in `genforge.modalities.MODALITIES`."""

    name: str
    default_metrics: tuple[str, ...]
    named_sources: tuple[str, ...]   # dataset names it reads (e.g. "bach-chorales")
    extensions: tuple[str, ...]      # file extensions it reads, lower case with the dot
    default_extractor: str | None    # evaluation's feature extractor (None: the domain encoder)
    evaluation_samples: int          # how many items evaluation draws by default

    def open(self, data_config) -> Dataset:
        """Read the dataset the config names; raise DataError with a one-line message when it can't."""

    def bind(self, vocabulary: dict) -> "Modality":
        """This kind for data with the given vocabulary (a dataset's or a model's): what
        to_model, from_model, write and preview then use. Images have none: themselves."""

    def model_shape(self, item_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one item as to_model makes it (images: the same)."""

    def to_model(self, items: torch.Tensor) -> torch.Tensor:
        """Integer items -> float tensor in the model's range ([-1, 1] for images)."""

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        """Model output -> integer items (clamped and rounded)."""

    def write(self, items: torch.Tensor, folder: Path, stems: list[str],
              metadata: list[dict] | None = None) -> list[Path]:
        """Write each item as a file named by its stem (with its metadata inside the file where
        the format allows); return the paths."""

    def preview(self, items: torch.Tensor, columns: int | None = None) -> Image.Image:
        """One picture showing many items, for sample grids and progress previews."""
