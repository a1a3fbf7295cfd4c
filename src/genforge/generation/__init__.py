"""Generation: a loaded model and everything it makes (samples, walks, harmonisations, level
completions), with the records, watermark and signatures that go with them."""
from .model import GenerativeModel, load
from .sampling import generate_items, resolve_sampling, slerp

__all__ = ["GenerativeModel", "load", "generate_items", "resolve_sampling", "slerp"]
