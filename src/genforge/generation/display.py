"""Display copies: beside each image under the watermark's minimum (a 32x32 sprite), an
upscaled copy for showing and sharing that carries the watermark and its own signed manifest,
which names the native file as its parent ingredient. The native file stays exact (a game needs
the 32x32 sprite); its record names its display copy."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..options import Declared, between, build, option
from ..provenance import stamp
from ..provenance.marking import RESAMPLES

SUFFIX = "-display"  # 000007.png -> 000007-display.png


@dataclass(frozen=True)
class DisplayOptions(Declared):
    """How display copies are made (none unless display_size is given)."""

    section = "display"
    display_size: int | None = option(
        None, "beside each image under the watermark's minimum (128x128), write an upscaled copy "
        "at least this many pixels on its shorter side that carries the watermark and its own "
        "signed manifest naming the native file (none when not given)", check=between(128, 4096))
    display_resample: str = option(
        "lanczos", "how display copies are upscaled: nearest (pixel art: each pixel a square "
        "block of at least 8x8, by a whole factor) or lanczos (smooth, to the size exactly)",
        choices=RESAMPLES)


def display_options(**given) -> DisplayOptions:
    """Checked display options from keywords (None: not given), with one-line errors."""
    return build(DisplayOptions, {k: v for k, v in given.items() if v is not None})


@dataclass
class DisplayCopies:
    """The marked display copies of a batch of items and the record of their watermark."""

    items: torch.Tensor
    mark: dict
    resample: str

    @staticmethod
    def name(stem: str) -> str:
        return f"{stem}{SUFFIX}.png"

    def summary(self) -> dict:
        return {"size": list(self.items.shape[-2:]), "resample": self.resample,
                "watermark": self.mark}

    def write(self, model, out: Path, stems: list[str], records: list[dict], signer) -> list[dict]:
        """Write each copy with its record (the native's, naming the native file), signed with
        the native file as its parent ingredient; returns the copies' records."""
        copies = [{**{k: v for k, v in r.items() if k != "display_copy"},
                   "file": self.name(stem), "display_of": r["file"], "watermark": self.mark,
                   "display": {k: v for k, v in self.summary().items() if k != "watermark"}}
                  for stem, r in zip(stems, records)]
        paths = model.modality.write(self.items, out, [f"{s}{SUFFIX}" for s in stems],
                                     metadata=copies)
        if signer is not None:
            for path, native, record in zip(paths, records, copies):
                stamp.sign_display_copy(path, out / native["file"], record, signer,
                                        model.manifest["dataset"]["fingerprint"])
        return copies


def make(modality, items: torch.Tensor, options: DisplayOptions, weights_sha256: str | None,
         watermark: bool, signed: bool) -> DisplayCopies | None:
    """The display copies the options ask for, marked (unless watermark is False), or None when
    none were asked for or the items carry the mark themselves."""
    if options.display_size is None:
        return None
    big = modality.display_copies(items, options.display_size, options.display_resample)
    if big is None:
        return None
    big, mark = modality.watermark(big, weights_sha256, watermark, signed=signed)
    return DisplayCopies(big, mark, options.display_resample)
