"""Metrics and the feature extractors they compare with; importing this registers the extractors."""
from . import extractors, inception  # noqa: F401  (inception registers "inception-v3")
