"""Model families by name. Each supplies modules, training phases and sampling to the one loop."""
from .base import Family, ModelSpec, Phase
from .diffusion import FAMILIES

__all__ = ["FAMILIES", "Family", "ModelSpec", "Phase"]
