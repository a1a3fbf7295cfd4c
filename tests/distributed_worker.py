"""Tiny runs of every family through the training loop, for tests/test_distributed.py.

Run under torchrun (`python -m torch.distributed.run --nproc-per-node 2 tests/distributed_worker.py
OUT`), each process trains each family for STEPS steps and writes its final weights to
OUT/<family>-rank<r>.safetensors, and the data positions it drew in one epoch to
OUT/order-rank<r>.json. Imported, `train_family` is the one-process run to compare with.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from genforge.api import resolve_config
from genforge.config import resolve_augment
from genforge.data import open_training_data
from genforge.families import FAMILIES
from genforge.modalities import MODALITIES, Dataset
from genforge.training import distributed, loop
from genforge.training.state import DataStream

STEPS = 10
COMMON = dict(grad_accum=2, warmup_steps=2, checkpoint_every=4, sample_every=1000, log_every=1,
              preview_count=2, device="cpu", precision="fp32", steps=STEPS)
FAMILY_RUNS = {
    # dropout draws from the global RNG, label dropout and the noise from the training generator
    "diffusion": ("fashion-mnist-sample",
                  dict(model_channels=8, channel_mult=(1, 2), num_blocks=1, attn_resolutions=(),
                       batch_size=8, resolution=12, lr=2e-3, dropout=0.1)),
    # masked diffusion over Sokoban tiles, with random symmetries of the level
    "discrete": ("tests/fixtures/levels/sokoban/tiny.xsb",
                 dict(model_channels=8, channel_mult=(1, 2), num_blocks=1, attn_resolutions=(),
                      batch_size=4, augment="symmetry")),
    # G, D and lazy R1 phases; ADA's probability moves every step (its evidence is summed)
    "gan": ("fashion-mnist-sample",
            dict(architecture="stylegan2", latent_dim=16, mapping_layers=2, generator_channels=8,
                 discriminator_channels=8, max_channels=16, batch_size=8, resolution=12,
                 augment="ada", ada_target=0.1, ada_images=64, ada_interval=1, r1_interval=2)),
}


class Keeping:
    """A family that keeps the module it built (the loop returns none)."""

    def __init__(self, family):
        self.family, self.module = family, None

    def __getattr__(self, name):
        return getattr(self.family, name)

    def build(self, spec, config):
        self.module = self.family.build(spec, config)
        return self.module


def train_family(name: str, run_dir: Path, steps: int = STEPS) -> dict[str, torch.Tensor]:
    """Train one family's tiny run in run_dir; its final parameters and buffers."""
    data, options = FAMILY_RUNS[name]
    config = resolve_config(data, preset=None, family=name, **{**COMMON, "steps": steps},
                            **options)
    dataset, _ = open_training_data(config.data)
    if len(dataset) > 48:  # a few dozen images are enough to compare runs
        dataset = Dataset(dataset.kind, dataset.items[:48].clone(), dataset.labels[:48].clone(),
                          dataset.class_names, dataset.source)
    config = resolve_augment(config, len(dataset), dataset.item_shape)
    family = Keeping(FAMILIES[name])
    loop.train(run_dir, config, dataset, family, MODALITIES[config.data.kind])
    return {k: v.detach().clone() for k, v in family.module.state_dict().items()}


def epoch_order(size: int, batch_size: int, micro_batches: int) -> list[int]:
    """The data positions this process draws in one epoch, as the loop draws them."""
    here = distributed.world()
    stream = distributed.ShardedStream(DataStream(size, seed=5), batch_size, micro_batches, here)
    return [int(i) for _ in range(size // batch_size) for _, part in stream.next_step()
            for i in part]


if __name__ == "__main__":
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    here = distributed.world()
    for family_name in FAMILY_RUNS:
        state = train_family(family_name, out / f"{family_name}-run")
        save_file({k: v.contiguous() for k, v in state.items()},
                  str(out / f"{family_name}-rank{here.rank}.safetensors"))
    (out / f"order-rank{here.rank}.json").write_text(json.dumps(epoch_order(60, 12, 4)))
    distributed.finish(here)
