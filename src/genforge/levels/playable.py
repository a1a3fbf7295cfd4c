"""Playability of generated levels: optional structural repair, then the game's check (the
Sokoban solver, Lode Runner gold reachability). Generation uses it for --repair and
--playable-only; the metrics use the same rules (metrics.levels reads `playability` from here)."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from . import lode_runner, sokoban
from .formats import LODE_RUNNER, SOKOBAN, Legend
from .repair import repair as repair_level

NODE_BUDGET = 20_000     # solver states per Sokoban level; ~1-4 s in the worst case on one core


def as_grids(levels) -> np.ndarray:
    """Levels (tensor, array or list of grids) as int64 [N, H, W]."""
    array = levels.cpu().numpy() if isinstance(levels, torch.Tensor) else np.asarray(levels)
    if array.ndim != 3:
        raise ValueError(f"levels must be [N, H, W], got shape {array.shape}")
    return array.astype(np.int64)


def playability(levels, legend: Legend, node_budget: int = NODE_BUDGET,
                dig: bool = True) -> list[dict]:
    """Per level: {"playable": bool, "status": ..., "length": moves or None}. Sokoban: solved by
    the solver (length: LURD moves of its solution, push-optimal when found in its A* phase,
    "optimal" says which); Lode Runner: every gold reached
    (length: None; `dig` allows digging)."""
    out = []
    for grid in as_grids(levels):
        if legend.chars == SOKOBAN.chars:
            if sokoban.check(grid) is not None:
                out.append({"playable": False, "status": "malformed", "length": None})
                continue
            result = sokoban.solve(grid, node_budget)
            out.append({"playable": result.status == sokoban.SOLVABLE, "status": result.status,
                        "length": result.moves if result.solution else None,
                        "pushes": result.pushes if result.solution else None,
                        "optimal": result.optimal})
        elif legend.chars == LODE_RUNNER.chars:
            ok = lode_runner.playable(grid, dig)
            status = "malformed" if lode_runner.check(grid) else "solvable" if ok else "unsolvable"
            out.append({"playable": ok, "status": status, "length": None})
        else:
            raise ConfigError(f"no playability rules for the game {legend.game!r}")
    return out


def check_levels(items: torch.Tensor, legend: Legend, *, repair: bool = False,
                 node_budget: int | None = None) -> tuple[torch.Tensor, list[dict]]:
    """Levels uint8 [N, H, W] (repaired when asked) and per level {"playable", "status",
    "solution_moves", "solution_pushes", "boxes" (Sokoban boxes or Lode Runner gold),
    "repaired"}; status is solvable, unsolvable, unknown (the solver's budget
    ran out) or malformed. Lode Runner levels also get "noisy": built unlike any game level
    (lode_runner.NOISE_BELOW), which reachable gold alone cannot tell."""
    grids, changed = [], []
    for grid in items.numpy():
        fixed, was_changed = repair_level(grid, legend) if repair else (grid, False)
        grids.append(np.asarray(fixed, dtype=np.uint8))
        changed.append(bool(was_changed))
    results = playability(np.stack(grids), legend, node_budget or NODE_BUDGET)
    pieces = legend.tiles_with("box") + legend.tiles_with("gold")
    infos = [{"playable": r["playable"], "status": r["status"], "solution_moves": r["length"],
              "solution_pushes": r.get("pushes"), "boxes": int(np.isin(g, pieces).sum()),
              "repaired": c} for r, c, g in zip(results, changed, grids)]
    if legend.chars == LODE_RUNNER.chars:  # reachable gold alone says nothing of the look
        for info, grid in zip(infos, grids):
            info["noisy"] = lode_runner.structure_share(grid) < lode_runner.NOISE_BELOW
    return torch.from_numpy(np.stack(grids)), infos
