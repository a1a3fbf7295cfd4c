"""Content kinds by name. Images today; music and levels plug into the same seam."""
from .base import Dataset, LoadReport, Modality
from .image import IMAGE

MODALITIES: dict[str, Modality] = {IMAGE.name: IMAGE}


def modality_for(spec) -> Modality:
    """The content kind of a model spec, bound to its vocabulary."""
    return MODALITIES[spec.modality].bind(spec.vocabulary)


__all__ = ["MODALITIES", "Dataset", "LoadReport", "Modality", "modality_for"]
