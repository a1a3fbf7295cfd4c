"""Model families by name. Each supplies modules, training phases and sampling to the one loop,
and declares its sampling options once (families.base.sampling_options reads them)."""
from .base import Family, ModelSpec, Phase, sampling_options
from .diffusion import DiffusionFamily
from .discrete import DiscreteFamily
from .gan import GANFamily

FAMILIES: dict[str, Family] = {"diffusion": DiffusionFamily(), "gan": GANFamily(),
                               "discrete": DiscreteFamily()}

__all__ = ["FAMILIES", "Family", "ModelSpec", "Phase", "sampling_options"]
