"""Content kinds by name: images, music and levels, peers behind one seam."""
from collections import Counter
from pathlib import Path

from ..errors import DataError
from .base import Dataset, LoadReport, Modality
from .image import IMAGE
from .level import LEVEL
from .music import MUSIC

MODALITIES: dict[str, Modality] = {IMAGE.name: IMAGE, MUSIC.name: MUSIC, LEVEL.name: LEVEL}
MAX_FILES_LOOKED_AT = 2000  # enough to tell a folder's kind without walking a huge tree


def guess_kind(source: str) -> str:
    """The content kind of a dataset name, a file or a folder (by its files' extensions: the kind
    with the most files wins; images when nothing is recognised)."""
    for kind, modality in MODALITIES.items():
        if source in modality.named_sources:
            return kind
    path = Path(source).expanduser()
    files = [path] if path.is_file() else (path.rglob("*") if path.is_dir() else [])
    counts = Counter()
    for n, file in enumerate(files):
        if n >= MAX_FILES_LOOKED_AT:
            break
        suffix = file.suffix.lower()
        counts.update(kind for kind, m in MODALITIES.items() if suffix in m.extensions)
    return counts.most_common(1)[0][0] if counts else IMAGE.name


def check_file(path: str | Path, kind: str | None = None) -> str:
    """The content kind of a user's file (or check it as `kind`), judged cheaply by the kind's
    own check (Modality.check_file: extension, first bytes, an image's header budgets) before
    anyone keeps it; a DataError in one line names the file otherwise."""
    path = Path(path)
    if kind is None:
        kinds = [k for k, m in MODALITIES.items() if path.suffix.lower() in m.folder_extensions]
        if not kinds:
            known = "; ".join(f"{k}: {' '.join(m.folder_extensions)}" for k, m in MODALITIES.items())
            raise DataError(f"{path.name}: not a file genforge reads ({known})")
        kind = kinds[0]
    if kind not in MODALITIES:
        raise DataError(f"unknown content kind {kind!r} (known: {', '.join(MODALITIES)})")
    MODALITIES[kind].check_file(path)
    return kind


def modality_for(spec) -> Modality:
    """The content kind of a model spec, bound to its vocabulary."""
    return MODALITIES[spec.modality].bind(spec.vocabulary)


__all__ = ["MODALITIES", "Dataset", "LoadReport", "Modality", "check_file", "guess_kind",
           "modality_for"]
