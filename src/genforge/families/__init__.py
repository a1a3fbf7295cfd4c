"""Model families by name. Each supplies modules, training phases and sampling to the one loop,
and declares its sampling options once (families.base.sampling_options reads them)."""
from typing import Any

import torch

from ..config import MAX_PARAMETERS
from ..errors import ConfigError
from ..modalities import MODALITIES, modality_for
from ..options import build, declarations
from .base import Family, ModelSpec, Phase
from .consistency import ConsistencyFamily
from .diffusion import DiffusionFamily
from .discrete import DiscreteFamily
from .gan import GANFamily

FAMILIES: dict[str, Family] = {"diffusion": DiffusionFamily(), "gan": GANFamily(),
                               "discrete": DiscreteFamily(), "consistency": ConsistencyFamily()}

__all__ = ["FAMILIES", "Family", "ModelSpec", "Phase", "sampling_options", "check_size"]


def sampling_options(family: Family, spec: ModelSpec | None, given: dict[str, Any], *,
                     inpainting: bool = False) -> Any:
    """The options a sampling (or inpainting) call runs with, checked: the family's declared
    defaults, then the content kind's (modality.sampling_defaults), then those given (None means
    "not given"). An option the family does not declare is refused by name."""
    cls = family.inpainting if inpainting else family.sampling
    if cls is None:
        raise ConfigError(f"a {family.name} model cannot be given part of an item to complete: "
                          "use a diffusion or discrete model")
    known = {d.name for d in declarations(cls)}
    given = {k: v for k, v in given.items() if v is not None}
    for name in given:
        if name not in known:
            raise ConfigError(_not_an_option_of(family, name, known, inpainting))
    kind = modality_for(spec).sampling_defaults(family.name, spec) if spec else {}
    return build(cls, {**{k: v for k, v in kind.items() if k in known}, **given})


def _not_an_option_of(family: Family, name: str, known: set[str], inpainting: bool) -> str:
    """Why an option is refused, and which family takes it: the user can retrain with that one."""
    flag = "--" + name.replace("_", "-")
    owners = [f for f, other in FAMILIES.items()
              if (other.inpainting if inpainting else other.sampling) is not None
              and name in {d.name for d in declarations(other.inpainting if inpainting
                                                        else other.sampling)}]
    text = (f"{flag} does not apply to a {family.name} model (its options: "
            f"{', '.join('--' + o.replace('_', '-') for o in sorted(known)) or 'none'})")
    if owners:
        kinds = [k for k, m in MODALITIES.items() if m.family == owners[0]]
        best = f" (the measured choice for {' and '.join(kinds)} data)" if kinds else ""
        text += (f"; it is an option of {' and '.join(owners)} models: retrain with --family "
                 f"{owners[0]}{best}")
    return text


def check_size(family: Family, spec: ModelSpec, config) -> int:
    """The parameter count of the module a config asks for, built on the meta device (no memory,
    0.01-0.2 s), refused above MAX_PARAMETERS: a model folder or a config from anyone cannot make
    genforge allocate what no machine has."""
    with torch.device("meta"):
        module = family.build(spec, config)
    count = sum(p.numel() for p in module.parameters())
    if count > MAX_PARAMETERS:
        raise ConfigError(f"this configuration asks for {count:,} parameters, more than the "
                          f"{MAX_PARAMETERS:,} genforge builds: choose smaller widths or depths")
    return count
