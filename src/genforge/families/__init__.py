"""Model families by name. Each supplies modules, training phases and sampling to the one loop."""
from .base import Family, ModelSpec, Phase
from .diffusion import DiffusionFamily
from .discrete import DiscreteFamily
from .gan import GANFamily

FAMILIES: dict[str, Family] = {"diffusion": DiffusionFamily(), "gan": GANFamily(),
                               "discrete": DiscreteFamily()}

__all__ = ["FAMILIES", "Family", "ModelSpec", "Phase"]
