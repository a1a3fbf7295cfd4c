"""Tiny exported model folders of every family, for the ONNX export and runtime tests.

Built directly (no training: seconds), with every weight moved off its initial value by seeded
noise: U-Nets start with zeroed output layers, and an all-zero network would agree with any
runtime whatever it computed."""
from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

import numpy as np
import torch

from genforge.config import config_from_dict, RunConfig
from genforge.export import export_model
from genforge.families import FAMILIES, ModelSpec
from genforge.levels import formats
from genforge.modalities import LEVEL

TINY_NET = {"model_channels": 8, "channel_mult": [1, 2], "num_blocks": 1, "attn_resolutions": []}
CASES = {
    # name: (family, spec, config sections)
    "diffusion-image": ("diffusion", ModelSpec("image", (1, 12, 12), ("a", "b", "c")),
                        {"network": TINY_NET}),
    # a consistency-tuned model: the same denoiser graph, sampled in 1 or 2 evaluations
    "consistency-image": ("consistency", ModelSpec("image", (1, 12, 12), ("a", "b")),
                          {"network": TINY_NET}),
    "gan-stylegan2": ("gan", ModelSpec("image", (1, 12, 12), ("a", "b")),
                      {"gan": {"architecture": "stylegan2", "latent_dim": 16,
                               "generator_channels": 8, "max_channels": 16, "mapping_layers": 2}}),
    "gan-dcgan": ("gan", ModelSpec("image", (3, 8, 8)),
                  {"gan": {"architecture": "dcgan", "latent_dim": 16, "generator_channels": 8,
                           "max_channels": 16}}),
    "discrete-sokoban": ("discrete", None, {"network": TINY_NET}),
    "discrete-music": ("discrete", ModelSpec("music", (4, 32), (), (8, 32, 48)),
                       {"network": {**TINY_NET, "attn_resolutions": [8]}}),
}


def sokoban_spec(shape=(7, 7)) -> ModelSpec:
    vocab = formats.SOKOBAN.to_dict()
    return ModelSpec("level", shape, (), LEVEL.bind(vocab).model_shape(shape), vocab)


def build_model(folder: Path, case: str | tuple, seed: int = 0) -> Path:
    """Write the exported model folder of `case` (a name in CASES, or a (family, spec, config
    sections) of one's own) with perturbed random weights."""
    family_name, spec, sections = CASES[case] if isinstance(case, str) else case
    spec = spec or sokoban_spec()
    config = config_from_dict({**RunConfig(family=family_name).to_dict(), **{
        k: {**RunConfig(family=family_name).to_dict()[k], **v} for k, v in sections.items()}})
    family = FAMILIES[family_name]
    torch.manual_seed(seed)
    module = family.build(spec, config)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.2)
        for name, b in module.named_buffers():
            if name.endswith("w_avg"):
                b.normal_()
    exported = family.exported(module).eval()
    return export_model(folder, exported, spec, config,
                        dataset={"source": "tests", "fingerprint": "0" * 64, "items": 0},
                        training={"steps": 0, "images_seen": 0, "seconds": 0})


class NumpyNoise:
    """A stand-in for sampling.SeededNoise in the PyTorch path that draws what the runtime draws
    (genforge.runtime.noise): one numpy stream per seed. The equivalence tests put it in place
    of torch's per-seed generators so both paths see identical noise."""

    def __init__(self, seeds, device="cpu"):
        from genforge.runtime.noise import SeedStreams
        self.streams = SeedStreams(seeds)
        self.device = device

    def __len__(self):
        return len(self.streams)

    def __call__(self, item_shape):
        return torch.from_numpy(self.streams(tuple(item_shape))).to(self.device)


def same_noise(monkeypatch) -> None:
    """Make the PyTorch families draw their noise from the runtime's numpy streams."""
    import genforge.families.diffusion as diffusion
    import genforge.families.discrete as discrete
    import genforge.families.gan as gan
    for module in (diffusion, discrete, gan):
        monkeypatch.setattr(module, "SeededNoise", NumpyNoise)


def max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


RUNTIME_PACKAGES = ["numpy", "onnxruntime", "pillow"]


def runtime_venv() -> Path:
    """The python of a venv holding only RUNTIME_PACKAGES, no system site-packages, built once
    under the temp folder (under a lock: xdist workers). RuntimeError when pip cannot."""
    key = hashlib.sha256(" ".join(RUNTIME_PACKAGES + [sys.version]).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"genforge-runtime-venv-{key}"
    python = folder / "bin" / "python"
    with open(f"{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "ready").exists():
            venv.create(folder, clear=True, with_pip=True, system_site_packages=False)
            done = subprocess.run([str(python), "-m", "pip", "install", "-q",
                                   "--disable-pip-version-check", *RUNTIME_PACKAGES],
                                  capture_output=True, text=True, timeout=600)
            if done.returncode:
                raise RuntimeError(f"pip could not install {RUNTIME_PACKAGES}: {done.stderr}")
            (folder / "ready").touch()
    return python
