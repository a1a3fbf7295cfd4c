"""The one inpainting driver: part of an item is given (a melody, a partial level), the model
fills in the rest. The content kind reads the given part from the user's file and says how its
mask maps onto the model tensor; the family fills in (continuous RePaint, or a masked model that
never hides the given symbols); the given entries always come back exactly."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..provenance import ingredients
from ..training.devices import autocast
from .precision import precision_record
from .outputs import check_output, output_signer, write_outputs


def inpaint_items(model, given: torch.Tensor, mask: torch.Tensor, seeds: list[int],
                  sampling: dict[str, Any] | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
    """Items [N, ...] completing given [N, ...] where mask [N, ...] (item entries) is True, item i
    from seeds[i], with the family's inpainting options (its declared defaults, then the content
    kind's measured ones, then sampling); returns the items and the options they ran with (and
    the precision: the one chosen for this model's own sampling at this size)."""
    spec = model.spec_for(tuple(given.shape[1:]))
    options = model.sampling(inpainting=True, spec=spec, **(sampling or {}))
    computed = model.sampling_precision(model.sampling(spec=spec), spec)
    model.module.eval()
    with autocast(computed["precision"], model.device):
        items = model.family.inpaint(model.module, seeds, given, mask, spec=spec,
                                     config=model.config, device=model.device, **options)
    return items, {**options, **precision_record(computed)}


def inpaint_file(model, path: str | Path, *, n: int, seed: int, params: dict[str, Any],
                 role: str, how: dict[str, Any] | None = None,
                 sampling: dict[str, Any] | None = None, repair: bool = False, sign: bool = True,
                 signer=None, audio: bool = False, out: str | Path | None = None) -> torch.Tensor:
    """n items completing the part of `path` the model's content kind reads as given (how: the
    kind's reading options); item i uses seed + i. params go into the generation record beside
    the sampling options (the family's declared inpainting options); the file itself is the
    items' ingredient (role: what it is, in words), recorded by name and hash, never its path.
    Kinds with checks (levels) check every item and record it; repair mends their structure
    first."""
    m = model.modality
    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    if model.family.inpainting is None:
        raise ConfigError(f"a {model.family.name} model cannot be given part of an item to "
                          "complete: use a diffusion or discrete model")
    m.require(audio=audio, checks="--repair" if repair else None)
    given, mask = m.read_given(path, model.spec.item_shape, **(how or {}))
    given_file = ingredients.of_file(path, ingredients.INPUT, role)
    if out is not None:
        check_output(out, n, tuple(given.shape))
    signer = output_signer(sign, signer, out)
    seeds = list(range(seed, seed + n))
    items, options = inpaint_items(model, given[None].expand(n, *given.shape),
                                   mask[None].expand(n, *mask.shape), seeds, sampling)
    checks = None
    if m.has_checks:
        items, checks = m.check(items, repair=repair)
    if out is not None:
        record = {**params, "given_entries": int(mask.sum()), "inpainting": model.family.name,
                  **options, **({"repair": repair} if m.has_checks else {})}
        mark = m.watermark(items, model.manifest.get("weights_sha256"), False,
                           signed=signer is not None)[1]
        write_outputs(model, items, Path(out), seeds, None, record, item_info=checks, mark=mark,
                      signer=signer, audio=audio, ingredients=[given_file])
    return items
