"""A run's health: the loss watch that rolls training back when it diverges, the rules for
resuming a run folder (and recovering one that stopped diverged), and the verdict a summary,
manifest and model card carry, so a diverged run is never exported as if it were fine."""
from __future__ import annotations

import math
import statistics
import time
from collections import deque
from pathlib import Path

from .. import io
from ..config import RunConfig, config_from_dict
from ..errors import CheckpointError, GenforgeError
from ..families import ModelSpec

MAX_ROLLBACKS = 3          # after this many rollbacks in one run, stop with an error
ROLLBACK_LR_FACTOR = 0.5   # each rollback halves the learning rate
EXPLODED = 1000.0          # a loss this many times its recent median counts as an explosion
# A single-phase run whose last logged loss is this many times its best ended far from where it
# was (measured: --lr 1 on the demo ended at 1.55 against a best of 0.93; healthy runs end within
# a few percent of their best).
FAR_ABOVE_BEST = 1.5
DIVERGED = "diverged.json"  # in the run folder after a divergence stop: a rerun may recover
# What a rerun after a divergence stop may change and still continue the same run.
RECOVERY_OPTIONS = ("train.lr", "train.warmup_steps", "train.grad_clip", "train.lr_schedule")


class TrainingDiverged(GenforgeError):
    """The loss became NaN or infinite (or exploded) and rolling back did not help."""


class LossWatch:
    """Per-phase recent |loss| history: says when a loss is NaN/Inf or explodes."""

    def __init__(self, window: int = 200, warmup: int = 50):
        self.history: dict[str, deque] = {}
        self.window, self.warmup = window, warmup

    def problem(self, phase: str, loss: float) -> str | None:
        if not math.isfinite(loss):
            return f"the {phase} loss became {loss}"
        recent = self.history.setdefault(phase, deque(maxlen=self.window))
        if len(recent) >= self.warmup:
            typical = statistics.median(recent)
            if abs(loss) > EXPLODED * max(typical, 1e-3):
                return f"the {phase} loss exploded to {loss:.4g} (recent median {typical:.4g})"
        recent.append(abs(loss))
        return None


def mark_diverged(run_dir: Path, step: int, rollbacks: int, message: str) -> None:
    """Leave word in the run folder that training stopped diverged (see recovery)."""
    io.write_json(run_dir / DIVERGED, {"step": step, "rollbacks": rollbacks, "message": message,
                                       "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def recovery(run_dir: Path, meta: dict, config: RunConfig) -> dict | None:
    """After a divergence stop, a rerun that lowers --lr or lengthens the warm-up (or changes
    clipping or the schedule) is a deliberate recovery: the changes, else None."""
    if not (run_dir / DIVERGED).exists():
        return None
    diffs = config_from_dict(meta["config"]).differences(config)
    if diffs and all(d.split(":")[0] in RECOVERY_OPTIONS for d in diffs):
        stop = io.read_json(run_dir / DIVERGED, "divergence record")
        return {"after_step": stop.get("step"), "changes": diffs,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return None


def check_same_run(meta: dict, config: RunConfig, spec: ModelSpec, path: Path,
                   recovering: bool = False) -> None:
    """Resuming with options that change the model or the data would silently mix two runs."""
    before = config_from_dict(meta["config"])
    if before.family != config.family:
        raise CheckpointError(f"{path.parent} holds a {before.family} run; it cannot be resumed "
                              f"as {config.family}: choose a new run folder (--run)")
    diffs = before.differences(config)
    if diffs and not recovering:
        after = (f"; after its divergence stop a rerun may change only "
                 f"{', '.join('--' + o.split('.')[1].replace('_', '-') for o in RECOVERY_OPTIONS)}"
                 if (path.parent / DIVERGED).exists() else "")
        raise CheckpointError(f"{path.parent} holds a run with other settings ({'; '.join(diffs)}); "
                              "rerun with the same options to resume, or choose a new run folder"
                              + after)
    if meta["spec"] != spec.to_dict():
        raise CheckpointError(f"{path.parent} was trained on data of another shape or classes "
                              f"({meta['spec']['item_shape']} vs {list(spec.item_shape)})")


def health(progress, single_phase: bool) -> dict:
    """The run's verdict: ok, or unstable (rolled back twice or more, or a single-phase loss that
    ended far above its best), with the figures and what was done about it."""
    notes = []
    if progress.rollbacks:
        notes.append(f"the loss diverged and training rolled back {progress.rollbacks} time(s); "
                     f"the learning rate ended at {progress.lr_scale:g}x the configured one")
    far = (single_phase and progress.best_loss and progress.window_loss is not None
           and progress.window_loss > FAR_ABOVE_BEST * progress.best_loss)
    if far:
        notes.append(f"the last logged loss {progress.window_loss:.4g} is "
                     f"{progress.window_loss / progress.best_loss:.1f}x its best "
                     f"{progress.best_loss:.4g}")
    for r in progress.recoveries:
        notes.append(f"recovered after the divergence stop at step {r['after_step']} with "
                     f"{'; '.join(r['changes'])}")
    status = "unstable" if progress.rollbacks >= 2 or far else "ok"
    return {"status": status, "rollbacks": progress.rollbacks, "lr_scale": progress.lr_scale,
            "best_loss": progress.best_loss, "final_loss": progress.window_loss,
            "recoveries": list(progress.recoveries), "notes": notes}
