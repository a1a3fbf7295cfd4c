"""Named starting configurations: what each family starts from, and the presets (cpu-small,
cpu, gpu) per family, as section -> option -> value. config.make_config applies them in order:
family defaults, then the preset, then the user's options; --dry-run shows the result."""
from __future__ import annotations

from typing import Any

# What a family starts from before any preset: GANs train with Adam at betas (0, 0.99) (set by
# the family), no warm-up, no clipping, and a shorter EMA (StyleGAN2-ADA: 10 kimg per 32 images).
FAMILY_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    # Diffusion decays its learning rate to zero at the end of the budget (--steps or --minutes):
    # at cpu-small on Fashion-MNIST, 2,560 steps, FD-fashion-mnist 0.72 against 0.79 at a
    # constant rate, the training loss 0.262 against 0.273 (benchmarks/README.md, "Quality per
    # CPU-minute").
    # It learns how to weigh noise levels (EDM2's uncertainty): at the same 1,762 steps,
    # FD-fashion-mnist 0.302 against 0.411 with EDM's fixed weighting. With that weighting it
    # trains on noisier levels, closer together, than EDM's P_mean -1.2, P_std 1.2: at 2,413
    # steps 0.194 at (-0.8, 1.0) against 0.246 at EDM's, 0.213 at (-0.8, 1.2), 0.278 at (-0.8,
    # 1.6), 0.265 at (-0.4, 1.2) (benchmarks/README.md, "Quality per CPU-minute").
    "diffusion": {"train": {"lr_schedule": "cosine"},
                  "diffusion": {"loss_weighting": "learned", "p_mean": -0.8, "p_std": 1.0}},
    "discrete": {},
    "gan": {"train": {"lr": 2e-3, "warmup_steps": 0, "grad_clip": 0.0, "ema_decay": 0.998}},
    # Consistency tuning (genforge distill) starts from the teacher's whole configuration, then
    # these: ECT's noise-level distribution for t (P_mean -1.1, P_std 2.0), a learning rate well
    # below the teacher's (the weights start good), no warm-up, and an EMA short enough to follow
    # a tuning of minutes. Dropout 0.2 while tuning (ECT's CIFAR-10 value; the teacher trained
    # without): FD-fashion-mnist at 1 step 1.22 against 1.85 without and 1.43 at 0.1, at 2 steps
    # unchanged (0.86 against 0.87; 100 steps a stage). At the default 200 a stage, 0.1 is better
    # at 2 steps (0.58 against 0.64) and worse at 1 (1.09 against 0.90; benchmarks/README.md).
    "consistency": {"network": {"dropout": 0.2}, "diffusion": {"p_mean": -1.1, "p_std": 2.0},
                    "train": {"lr": 2e-4, "warmup_steps": 0, "ema_decay": 0.99,
                              "lr_schedule": "constant",  # as measured (bench_few_step.py)
                              "checkpoint_every": 250, "sample_every": 250}},
}

PRESETS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    # Sized for the 5-minute demo on 2 CPU cores: ~1.1M parameters, 2x2 patches (28x28 runs at 14, 7, 4).
    "cpu-small": {
        "diffusion": {
            "network": {"model_channels": 32, "channel_mult": (1, 2, 2), "num_blocks": 1,
                        "attn_resolutions": (7,), "patch_size": 2},
            "train": {"batch_size": 64, "lr": 2e-3, "warmup_steps": 100, "ema_decay": 0.998,
                      "checkpoint_every": 250, "sample_every": 500},
        },
        # Symbols are few positions (a 10x10 level, 4 voices x 64 steps): no patches, wider.
        "discrete": {
            "network": {"model_channels": 48, "channel_mult": (1, 2, 2), "num_blocks": 2,
                        "patch_size": 1},
            "train": {"batch_size": 64, "lr": 1e-3, "warmup_steps": 100, "ema_decay": 0.998,
                      "checkpoint_every": 250, "sample_every": 500},
        },
        "gan": {
            "gan": {"architecture": "stylegan2", "generator_channels": 32,
                    "discriminator_channels": 32, "max_channels": 128},
            "train": {"batch_size": 64, "checkpoint_every": 500, "sample_every": 1000},
        },
    },
    # A laptop CPU given an hour or more: ~7M parameters; 2x2 patches make each step ~4x cheaper
    # than the same network at full resolution, which buys more steps in the same hour.
    "cpu": {
        "diffusion": {
            "network": {"model_channels": 64, "channel_mult": (1, 2, 2), "num_blocks": 2,
                        "attn_resolutions": (7, 8), "patch_size": 2},
            "train": {"batch_size": 64, "lr": 1e-3},
        },
        "discrete": {
            "network": {"model_channels": 96, "channel_mult": (1, 2, 2), "num_blocks": 2,
                        "patch_size": 1},
            "train": {"batch_size": 64, "lr": 1e-3},
        },
        "gan": {
            "gan": {"architecture": "stylegan2", "generator_channels": 64,
                    "discriminator_channels": 64, "max_channels": 256},
            "train": {"batch_size": 64},
        },
    },
    # One GPU: wider, deeper, bigger batches, bf16.
    "gpu": {
        "diffusion": {
            "network": {"model_channels": 128, "channel_mult": (1, 2, 2, 2), "num_blocks": 2,
                        "attn_resolutions": (16, 8), "dropout": 0.1},
            "train": {"batch_size": 256, "lr": 4e-4, "ema_decay": 0.9999, "precision": "bf16",
                      "checkpoint_every": 2000, "sample_every": 2000},
        },
        "discrete": {
            "network": {"model_channels": 128, "channel_mult": (1, 2, 2, 2), "num_blocks": 2,
                        "dropout": 0.1},
            "train": {"batch_size": 256, "lr": 4e-4, "ema_decay": 0.9999, "precision": "bf16",
                      "checkpoint_every": 2000, "sample_every": 2000},
        },
        "gan": {
            "gan": {"architecture": "stylegan2", "generator_channels": 128,
                    "discriminator_channels": 128, "max_channels": 512, "latent_dim": 512},
            "train": {"batch_size": 64, "precision": "bf16", "checkpoint_every": 2000,
                      "sample_every": 2000},
        },
    },
}
