"""Metrics and the feature extractors they compare with; importing this registers the extractors
(Inception, the domain encoder's files, the symbolic music and level-tile features) and metrics."""
from . import encoder, extractors, inception, levels, music  # noqa: F401  (they register)
