"""Levels' own generation: completing a partial level, and the playability checks every generated
level gets (--repair mends its structure first; --playable-only draws further seeds until n pass)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .. import progress
from ..errors import ConfigError, GenforgeError
from .inpaint import inpaint_file

MAX_PLAYABLE_TRIES = 20  # --playable-only draws at most this many times n levels
Draw = Callable[[int, list[int], torch.Tensor | None], torch.Tensor]  # (count, seeds, labels)


def complete(model, partial: str | Path, *, n: int = 4, seed: int = 0, repair: bool = False,
             sign: bool = True, signer=None, out: str | Path | None = None,
             **sampling: Any) -> torch.Tensor:
    """n completions of a partial level (a text grid in the game's characters, '?' where tiles
    are to be generated): the given tiles come back exactly, the model fills the rest by
    inpainting; each completion's playability is checked and recorded. sampling: the family's
    inpainting options (discrete: rules mends the generated tiles' border, boxes and goals)."""
    if model.spec.modality != "level":
        raise ConfigError(f"completing levels needs a level model; this is a "
                          f"{model.spec.modality} {model.config.family} model")
    return inpaint_file(model, partial, n=n, seed=seed, params={"complete": Path(partial).name},
                        role="partial level", sampling=sampling, repair=repair, sign=sign, signer=signer, out=out)


def check_items(model, items: torch.Tensor, seeds: list[int], labels: torch.Tensor | None,
                draw: Draw, *, batch_size: int, repair: bool, playable_only: bool):
    """Items checked by their kind (and repaired when asked); with playable_only the unplayable
    ones are replaced by the next seeds' until n pass. Stops early, with one line, when the
    acceptance rate so far says n playable items would take more than MAX_PLAYABLE_TRIES * n
    draws. Returns items, seeds, per-item checks and the acceptance record."""
    check = model.modality.check
    items, checks = check(items, repair=repair)
    n, tried, next_seed = len(items), len(items), max(seeds) + 1
    keep = [i for i, c in enumerate(checks) if c["playable"] or not playable_only]
    items, seeds, checks = items[keep], [seeds[i] for i in keep], [checks[i] for i in keep]
    limit = MAX_PLAYABLE_TRIES * n
    with progress.task("check", total=n, unit="item", playable_only=playable_only) as task:
        task.update(len(items), tried=tried, acceptance_rate=round(len(items) / tried, 4))
        while len(items) < n:
            # (accepted + 1) / (tried + 2): Laplace's rule, so no level yet is not a zero rate
            projected = tried + (n - len(items)) * (tried + 2) / (len(items) + 1)
            if tried >= limit or (tried >= 2 * n and projected > limit):
                raise GenforgeError(
                    f"only {len(items)} of {tried} generated levels were playable "
                    f"({len(items) / tried:.1%}); at this rate {n} would take about "
                    f"{projected:.0f} draws, more than the limit of {limit} "
                    f"({MAX_PLAYABLE_TRIES} x {n}): train longer"
                    + ("" if repair else ", or add --repair"))
            more_seeds = list(range(next_seed, next_seed + batch_size))
            next_seed += batch_size
            more = draw(len(more_seeds), more_seeds,
                        None if labels is None else labels[:1].expand(len(more_seeds)))
            more, more_checks = check(more, repair=repair)
            tried += len(more_seeds)
            good = [i for i, c in enumerate(more_checks) if c["playable"]][:n - len(items)]
            items = torch.cat([items, more[good]])
            seeds += [more_seeds[i] for i in good]
            checks += [more_checks[i] for i in good]
            task.update(len(items), tried=tried, acceptance_rate=round(len(items) / tried, 4))
    accepted = n if playable_only else sum(c["playable"] for c in checks)
    acceptance = {"tried": tried, "playable": accepted,
                  "acceptance_rate": round(accepted / tried, 4),
                  "repaired": sum(c["repaired"] for c in checks), "repair": repair,
                  "playable_only": playable_only,
                  **({"noisy": sum(c["noisy"] for c in checks)} if "noisy" in checks[0] else {})}
    return items, seeds, checks, acceptance
