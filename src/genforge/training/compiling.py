"""--compile: the training losses call torch.compile'd networks (inductor fuses a U-Net's
GroupNorm, SiLU and scale-shift into few kernels), while checkpoints, the EMA and the export keep
seeing the plain model, whose parameters the compiled networks share.

Compiling costs time once, at the first steps (and again when a shape or the set of trained
parameters changes, as between a GAN's phases); the run summary reports it beside the step time
after it, so a user sees whether a long run pays it back.
"""
from __future__ import annotations

import copy
import os
import shutil
import statistics
import sysconfig
import time
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError

STEADY_STEPS = 10  # steps after the first whose median is the compiled step time


def check_compiler(device: torch.device) -> None:
    """On the CPU, torch.compile builds C++ kernels that include Python.h: refuse --compile in
    one line, before any training, where the compiler or the headers are missing."""
    if device.type != "cpu":
        return
    if not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")):
        raise ConfigError("--compile needs a C++ compiler on the CPU (torch.compile builds its "
                          "kernels with it): install g++ (Debian: apt-get install g++) or train "
                          "without --compile")
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.exists():
        raise ConfigError(f"--compile needs Python's C headers ({headers} is missing): install "
                          "them (Debian: apt-get install python3-dev) or train without --compile")


def compiled_view(model: nn.Module) -> nn.Module:
    """A shallow copy of model whose child networks are torch.compile'd: the loss calls it as it
    would the model (a denoiser's preconditioning stays eager around its compiled network; a
    GAN's generator and discriminator are each compiled); parameters and buffers are shared."""
    view = copy.copy(model)  # the same parameters and submodules, its own child table
    view._modules = {name: child if child is None or isinstance(child, (nn.ModuleList,
                                                                        nn.ModuleDict))
                     else torch.compile(child) for name, child in model._modules.items()}
    return view


class CompileClock:
    """Times the steps of a compiled session: the first (which compiles) and the steady ones."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def start(self) -> None:
        self._start = time.perf_counter()

    def stop(self) -> None:
        if len(self.times) <= STEADY_STEPS:
            self.times.append(time.perf_counter() - self._start)

    def record(self) -> dict | None:
        """{first_step_s, step_s, compile_s}: the first step, the median of the next ones, and
        their difference (the compilation's cost), once enough steps ran; else None."""
        if len(self.times) < 2:
            return None
        steady = statistics.median(self.times[1:])
        return {"first_step_s": round(self.times[0], 2), "step_s": round(steady, 4),
                "compile_s": round(max(0.0, self.times[0] - steady), 1),
                "steps_timed": len(self.times) - 1}
