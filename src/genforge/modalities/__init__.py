"""Content kinds by name. Images today; music and levels plug into the same seam."""
from .base import Dataset, LoadReport, Modality
from .image import IMAGE

MODALITIES: dict[str, Modality] = {IMAGE.name: IMAGE}

__all__ = ["MODALITIES", "Dataset", "LoadReport", "Modality"]
