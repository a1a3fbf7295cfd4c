"""Metrics and the feature extractors they compare with; importing this registers the extractors."""
from . import extractors, inception, levels, music  # noqa: F401  (they register extractors and metrics)
