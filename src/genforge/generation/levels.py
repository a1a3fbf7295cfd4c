"""Levels' own generation: completing a partial level, and the playability checks every generated
level gets (--repair mends its structure first; --playable-only draws further seeds until n pass)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import progress
from ..errors import ConfigError, GenforgeError
from ..options import Declared, at_least, build, option
from .inpaint import inpaint_file


@dataclass(frozen=True)
class LevelFilter(Declared):
    """Which generated levels are kept beside --playable-only: a level below a minimum is
    replaced by the next seeds' as an unplayable one is (none unless given)."""

    section = "levels"
    min_moves: int | None = option(None, "levels: keep only levels whose solver solution takes "
                                   "at least this many moves (Sokoban; implies --playable-only)",
                                   check=at_least(1))
    min_boxes: int | None = option(None, "levels: keep only levels with at least this many boxes "
                                   "(Sokoban) or gold pieces (Lode Runner); implies "
                                   "--playable-only", check=at_least(1))

    @property
    def active(self) -> bool:
        return self.min_moves is not None or self.min_boxes is not None

    def keeps(self, check: dict) -> bool:
        """Whether a level's check (levels.playable.check_levels) passes: playable and at the
        minimums."""
        return bool(check["playable"]) and (
            self.min_moves is None or (check.get("solution_moves") or 0) >= self.min_moves) and (
            self.min_boxes is None or check.get("boxes", 0) >= self.min_boxes)


def level_filter(**given) -> LevelFilter:
    """Checked filter options from keywords (None: not given), with one-line errors."""
    return build(LevelFilter, {k: v for k, v in given.items() if v is not None})

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
                draw: Draw, *, batch_size: int, repair: bool, playable_only: bool,
                keep: LevelFilter = LevelFilter()):
    """Items checked by their kind (and repaired when asked); with playable_only (or a minimum
    in keep) the unplayable ones, and those below keep's minimums, are replaced by the next
    seeds' until n pass. Stops early, with one line, when the
    acceptance rate so far says n playable items would take more than MAX_PLAYABLE_TRIES * n
    draws. Returns items, seeds, per-item checks and the acceptance record."""
    check = model.modality.check
    playable_only = playable_only or keep.active
    items, checks = check(items, repair=repair)
    n, tried, next_seed = len(items), len(items), max(seeds) + 1
    kept = [i for i, c in enumerate(checks) if keep.keeps(c) or not playable_only]
    items, seeds, checks = items[kept], [seeds[i] for i in kept], [checks[i] for i in kept]
    limit = MAX_PLAYABLE_TRIES * n
    with progress.task("check", total=n, unit="item", playable_only=playable_only) as task:
        task.update(len(items), tried=tried, acceptance_rate=round(len(items) / tried, 4))
        while len(items) < n:
            # (accepted + 1) / (tried + 2): Laplace's rule, so no level yet is not a zero rate
            projected = tried + (n - len(items)) * (tried + 2) / (len(items) + 1)
            if tried >= limit or (tried >= 2 * n and projected > limit):
                raise GenforgeError(
                    f"only {len(items)} of {tried} generated levels were playable"
                    f"{' at the minimums asked' if keep.active else ''} "
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
            good = [i for i, c in enumerate(more_checks) if keep.keeps(c)][:n - len(items)]
            items = torch.cat([items, more[good]])
            seeds += [more_seeds[i] for i in good]
            checks += [more_checks[i] for i in good]
            task.update(len(items), tried=tried, acceptance_rate=round(len(items) / tried, 4))
    accepted = n if playable_only else sum(c["playable"] for c in checks)
    acceptance = {"tried": tried, "playable": accepted,
                  "acceptance_rate": round(accepted / tried, 4),
                  "repaired": sum(c["repaired"] for c in checks), "repair": repair,
                  "playable_only": playable_only,
                  **{k: v for k, v in vars(keep).items() if v is not None},
                  **({"noisy": sum(c["noisy"] for c in checks)} if "noisy" in checks[0] else {})}
    return items, seeds, checks, acceptance
