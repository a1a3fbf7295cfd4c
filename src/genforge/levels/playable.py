"""Playability of generated levels, one at a time: optional structural repair, then the game's
check (the Sokoban solver, Lode Runner gold reachability). Generation uses it for --repair and
--playable-only; the metrics use the same rules (metrics.levels.playability)."""
from __future__ import annotations

import numpy as np
import torch

from .formats import Legend
from .repair import repair as repair_level


def check_levels(items: torch.Tensor, legend: Legend, *, repair: bool = False,
                 node_budget: int | None = None) -> tuple[torch.Tensor, list[dict]]:
    """Levels uint8 [N, H, W] (repaired when asked) and per level {"playable", "status",
    "solution_moves", "repaired"}; status is solvable, unsolvable, unknown (the solver's budget
    ran out) or malformed."""
    from ..metrics.levels import NODE_BUDGET, playability
    grids, changed = [], []
    for grid in items.numpy():
        fixed, was_changed = repair_level(grid, legend) if repair else (grid, False)
        grids.append(np.asarray(fixed, dtype=np.uint8))
        changed.append(bool(was_changed))
    results = playability(np.stack(grids), legend, node_budget or NODE_BUDGET)
    infos = [{"playable": r["playable"], "status": r["status"], "solution_moves": r["length"],
              "repaired": c} for r, c in zip(results, changed)]
    return torch.from_numpy(np.stack(grids)), infos
