"""Configuration: small frozen dataclasses, named presets and a JSON round trip.

Each field is declared once, with its help text in `metadata`; the CLI builds its options from these
declarations, so an option is never written in three places.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any, get_args, get_origin, get_type_hints

from .errors import ConfigError


def option(default: Any, help: str, choices: tuple | None = None) -> Any:
    """A dataclass field carrying its CLI help text (and allowed values)."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class DataConfig:
    kind: str = option("auto", "content kind of the data (auto: from the dataset name or the "
                       "files in the folder)", choices=("auto", "image", "music", "level"))
    source: str = option("fashion-mnist-sample", "a folder of images, music or levels, or a "
                         "dataset name (fashion-mnist, fashion-mnist-sample, bach-chorales, "
                         "sokoban, lode-runner)")
    root: str | None = option(None, "where a named dataset lies (default: search $GENFORGE_DATA, "
                              "Debian's /usr/share/datasets, the download cache)")
    download: bool = option(True, "download a named dataset from its official source when it "
                            "is not found locally")
    resolution: int | None = option(None, "image side in pixels (default: from the data)")
    channels: int | None = option(None, "1 (grey), 3 (RGB) or 4 (RGBA); default: keep the data's",
                                  choices=(None, 1, 3, 4))
    fit: str = option("crop", "how non-square images become square", choices=("crop", "pad"))
    labels: str = option("auto", "class labels from sub-folder names: auto uses them when every "
                         "image sits in one of two or more sub-folders",
                         choices=("auto", "folders", "none"))
    max_bad_fraction: float = option(0.1, "refuse to train when more than this share of files "
                                     "cannot be read")
    dedup: bool = option(False, "train on the first of each group of exact or near-duplicate "
                         "items only (see 'genforge audit'; changes the data fingerprint)")
    representation: str = option("satb", "music: satb (four voices on a 16th-note grid, as "
                                 "Coconet) or pianoroll (any polyphony)",
                                 choices=("satb", "pianoroll"))
    bars: int = option(4, "music: length of the training crops in 4/4 bars")
    hop: int = option(1, "music: bars between the starts of two crops")
    split: str = option("train", "music: which part of the split by work to read "
                        "(documented in genforge.music.dataset)",
                        choices=("train", "validation", "test", "all"))
    transpose: int = option(6, "music: add copies of the training split transposed up to this "
                            "many semitones each way (within each voice's range; 0: none)")
    max_size: str | None = option(None, "levels: leave out levels larger than N or HxW tiles "
                                  "(e.g. 10)")
    level_fit: str = option("pad", "levels: how levels of different sizes become one size: pad "
                            "with the game's filler tile (Sokoban: wall), crop into windows, or "
                            "none (all must be the same size)", choices=("pad", "crop", "none"))
    level_size: str | None = option(None, "levels: the padded size or crop window, N or HxW "
                                    "(default: --max-size, else the largest level)")
    level_align: str = option("centre", "levels: where a padded level sits",
                              choices=("centre", "top-left"))
    level_stride: int | None = option(None, "levels: crop stride (default: half the window)")
    level_sets: str = option("free", "levels: which Sokoban sets of cavepacker-data to read: free "
                             "(public domain and CC0: xsokoban, gri, mgerhardy), all (the GPL sets "
                             "too, read from your installed package), or set names, comma-separated")
    legend: str | None = option(None, "levels: the tile legend of a folder of text grids: a "
                                "legend JSON (VGLC format) or a game name (sokoban, lode-runner)")


@dataclass(frozen=True)
class NetworkConfig:
    model_channels: int = option(64, "U-Net base width")
    channel_mult: tuple[int, ...] = option((1, 2, 2), "width multiplier per resolution level")
    num_blocks: int = option(2, "residual blocks per level")
    attn_resolutions: tuple[int, ...] = option((), "feature-map sides that get self-attention")
    dropout: float = option(0.0, "dropout inside residual blocks")
    patch_size: int = option(1, "fold p x p pixels into channels first (cheaper on CPU)")


@dataclass(frozen=True)
class DiffusionConfig:
    sigma_data: float = option(0.5, "data standard deviation assumed by EDM preconditioning")
    sigma_min: float = option(0.002, "smallest noise level sampled")
    sigma_max: float = option(80.0, "largest noise level sampled")
    p_mean: float = option(-1.2, "mean of log-sigma during training (EDM P_mean)")
    p_std: float = option(1.2, "std of log-sigma during training (EDM P_std)")
    label_dropout: float = option(0.1, "share of labels dropped in training, for classifier-free guidance")


@dataclass(frozen=True)
class GANConfig:
    architecture: str = option("stylegan2", "GAN networks: stylegan2 (mapping network, modulated "
                               "convolutions, noise, skips; residual D), dcgan, or mlp for 1-D items",
                               choices=("stylegan2", "dcgan", "mlp"))
    latent_dim: int = option(128, "size of the generator's input latent z")
    mapping_layers: int = option(4, "layers of the StyleGAN2 mapping network")
    generator_channels: int = option(32, "generator width at full resolution (doubles per halving)")
    discriminator_channels: int = option(32, "discriminator width at full resolution (doubles per halving)")
    max_channels: int = option(256, "cap on any layer's width")
    gan_loss: str = option("logistic", "non-saturating logistic (with R1) or hinge",
                           choices=("logistic", "hinge"))
    r1_gamma: float | None = option(None, "R1 gradient penalty weight (0: off; default: "
                                    "0.0002 x pixels / batch, the StyleGAN2-ADA heuristic)")
    r1_interval: int = option(16, "lazy regularisation: apply R1 every N steps, scaled by N")


@dataclass(frozen=True)
class AugmentConfig:
    augment: str = option("auto", "augmentation: ada or diffaugment (GAN), nonleaking (diffusion), "
                          "symmetry (discrete: the game's own symmetries of a level); off; auto: "
                          "ada for GANs below 50,000 items, symmetry for discrete level models, "
                          "otherwise off",
                          choices=("auto", "off", "ada", "diffaugment", "nonleaking", "symmetry"))
    augment_p: float = option(0.12, "probability of each non-leaking augmentation (diffusion)")
    ada_target: float = option(0.6, "ADA: target E[sign(D(real))]; above it the augmentation grows")
    ada_images: int = option(100_000, "ADA: real images it takes p to move from 0 to 1")
    ada_interval: int = option(4, "ADA: adjust p every N steps")


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = option(64, "images per optimiser step (split over --grad-accum micro-batches)")
    grad_accum: int = option(1, "micro-batches per optimiser step")
    lr: float = option(1e-3, "peak learning rate (AdamW)")
    weight_decay: float = option(0.0, "AdamW weight decay")
    warmup_steps: int = option(200, "linear learning-rate warm-up")
    lr_schedule: str = option("constant", "after warm-up: constant, or cosine decay to zero at the "
                              "end of the --steps or --minutes budget", choices=("constant", "cosine"))
    grad_clip: float = option(1.0, "clip the gradient norm to this (0: off)")
    ema_decay: float = option(0.999, "EMA decay of the weights that are exported")
    precision: str = option("auto", "bf16 autocast (auto: bf16 when the hardware runs it fast)",
                            choices=("auto", "fp32", "bf16"))
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    steps: int | None = option(None, "stop after this many optimiser steps")
    minutes: float | None = option(None, "stop after this much training time (summed over resumes)")
    checkpoint_every: int = option(500, "write the training state every N steps")
    sample_every: int = option(500, "write a sample grid every N steps (and at step 0)")
    log_every: int = option(25, "append stats to stats.jsonl every N steps")
    preview_count: int = option(64, "samples in each preview grid")
    seed: int = option(0, "seed for weights, data order and noise")
    tensorboard: bool = option(False, "also log to TensorBoard (needs the tensorboard package)")
    progress: bool = option(True, "show a progress bar")
    eval_every: int = option(0, "evaluate the EMA model every N steps and keep the best (0: off)")
    eval_samples: int = option(2000, "samples per in-training evaluation")
    eval_metric: str = option("fd", "metric that picks the best checkpoint (lower is better)",
                              choices=("fd", "kid"))
    eval_extractor: str | None = option(None, "feature extractor for in-training evaluation: an "
                                        "encoder file from 'genforge features train', or inception-v3")


@dataclass(frozen=True)
class RunConfig:
    family: str = option("diffusion", "model family: diffusion (continuous, EDM), gan, or discrete "
                         "(masked diffusion over symbols: music and levels)",
                         choices=("diffusion", "gan", "discrete"))
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    gan: GANConfig = field(default_factory=GANConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def shaping_dict(self) -> dict:
        """The options that shape the trained model: all but budgets, logging and device."""
        d = self.to_dict()
        for key in SESSION_ONLY:
            d["train"].pop(key)
        return d

    def hash(self) -> str:
        """Short hash of the options that shape the trained model."""
        return hashlib.sha256(json.dumps(self.shaping_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def differences(self, other: "RunConfig") -> list[str]:
        """'section.key: old -> new' for each model-shaping option that differs from other's."""
        mine, theirs = self.shaping_dict(), other.shaping_dict()
        if mine["family"] != theirs["family"]:
            return [f"family: {mine['family']!r} -> {theirs['family']!r}"]
        return [f"{section}.{key}: {value!r} -> {theirs[section][key]!r}"
                for section in SECTIONS for key, value in mine[section].items()
                if theirs[section][key] != value]


# Options a rerun may change without starting a new model: budgets, cadence, logging, device.
SESSION_ONLY = ("steps", "minutes", "checkpoint_every", "sample_every", "log_every",
                "preview_count", "tensorboard", "progress", "device", "eval_every", "eval_samples",
                "eval_metric", "eval_extractor")


SECTIONS = {"data": DataConfig, "network": NetworkConfig, "diffusion": DiffusionConfig,
            "gan": GANConfig, "augment": AugmentConfig, "train": TrainConfig}
FAMILIES = ("diffusion", "gan", "discrete")
# Sections only some families read; the others (data, augment, train) are shared.
FAMILY_SECTIONS = {"diffusion": ("network", "diffusion"), "gan": ("gan",), "discrete": ("network",)}
AUGMENT_BY_FAMILY = {"diffusion": ("off", "nonleaking"), "gan": ("off", "ada", "diffaugment"),
                     "discrete": ("off", "symmetry")}
# What --augment auto picks below AUGMENT_AUTO_BELOW items (above it: off). GANs get ADA. Diffusion
# stays off: in benchmarks/bench_small_data.py non-leaking augmentation doubled FD-domain at 1,000
# and at 60,000 images within 6 GPU-minutes (EDM's gains come from runs 500x longer), so it is a
# choice to make for long runs (--augment nonleaking), not a default.
AUGMENT_AUTO = {"gan": "ada", "diffusion": "off", "discrete": "symmetry"}
AUGMENT_AUTO_BELOW = 50_000
# Below this many items a model is likely to memorise its training data.
SMALL_DATASET = 1_000

# What a family starts from before any preset: GANs train with Adam at betas (0, 0.99) (set by
# the family), no warm-up, no clipping, and a shorter EMA (StyleGAN2-ADA: 10 kimg per 32 images).
FAMILY_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "diffusion": {},
    "discrete": {},
    "gan": {"train": {"lr": 2e-3, "warmup_steps": 0, "grad_clip": 0.0, "ema_decay": 0.998}},
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


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Turn a JSON or CLI value into the field's type, or raise ConfigError naming the field."""
    origin, args = get_origin(hint), get_args(hint)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{where}: a value is required")
    if args and type(None) in args:  # Optional[X]
        (inner,) = [a for a in args if a is not type(None)]
        if isinstance(value, str) and value.lower() == "none":
            return None
        return _coerce(value, inner, where)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, args[0], where) for v in value)
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
            if not isinstance(value, bool):  # 2 or 0.5 is a mistake, not a yes
                raise ValueError
            return value
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return hint(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}") from None


def build_section(cls: type, values: dict[str, Any], section: str) -> Any:
    """Build one frozen section from a dict, rejecting unknown keys and invalid values."""
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown option {section}.{sorted(unknown)[0]} "
                          f"(known: {', '.join(sorted(known))})")
    kwargs = {}
    for name, value in values.items():
        coerced = _coerce(value, hints[name], f"{section}.{name}")
        choices = known[name].metadata.get("choices")
        if choices is not None and coerced not in choices:
            raise ConfigError(f"{section}.{name}: {coerced!r} is not one of "
                              f"{', '.join(str(c) for c in choices)}")
        kwargs[name] = coerced
    return cls(**kwargs)


def validate(config: RunConfig) -> RunConfig:
    """Check cross-field rules once, at the edge."""
    t, n, d, g, a = config.train, config.network, config.diffusion, config.gan, config.augment
    checks = [
        (t.batch_size >= 1, f"train.batch_size must be at least 1, got {t.batch_size}"),
        (t.grad_accum >= 1, f"train.grad_accum must be at least 1, got {t.grad_accum}"),
        (t.grad_accum < 1 or t.batch_size % t.grad_accum == 0,
         f"train.batch_size ({t.batch_size}) must be a multiple of train.grad_accum ({t.grad_accum})"),
        (t.lr > 0, f"train.lr must be positive, got {t.lr}"),
        (0.0 <= t.ema_decay < 1.0, f"train.ema_decay must be in [0, 1), got {t.ema_decay}"),
        (t.steps is None or t.steps >= 0, f"train.steps must be non-negative, got {t.steps}"),
        (t.minutes is None or t.minutes > 0, f"train.minutes must be positive, got {t.minutes}"),
        (min(t.checkpoint_every, t.sample_every, t.log_every) >= 1,
         "train.checkpoint_every, sample_every and log_every must be at least 1"),
        (n.model_channels >= 8 and n.model_channels % 8 == 0,
         f"network.model_channels must be a multiple of 8, got {n.model_channels}"),
        (len(n.channel_mult) >= 1 and min(n.channel_mult) >= 1,
         f"network.channel_mult must list positive multipliers, got {n.channel_mult}"),
        (n.num_blocks >= 1, f"network.num_blocks must be at least 1, got {n.num_blocks}"),
        (n.patch_size >= 1, f"network.patch_size must be at least 1, got {n.patch_size}"),
        (0.0 <= n.dropout < 1.0, f"network.dropout must be in [0, 1), got {n.dropout}"),
        (0.0 < d.sigma_min < d.sigma_max, "diffusion.sigma_min must be positive and below sigma_max"),
        (0.0 <= d.label_dropout < 1.0,
         f"diffusion.label_dropout must be in [0, 1), got {d.label_dropout}"),
        (t.eval_every >= 0, f"train.eval_every must be non-negative, got {t.eval_every}"),
        (t.eval_samples >= 2, f"train.eval_samples must be at least 2, got {t.eval_samples}"),
        (t.eval_every == 0 or t.eval_extractor,
         "in-training evaluation (--eval-every) needs --eval-extractor: an encoder file made by "
         "'genforge features train DATA', or inception-v3"),
        (config.augment.augment in ("auto", *AUGMENT_BY_FAMILY[config.family]),
         f"augment.augment: {config.augment.augment!r} does not apply to the {config.family} "
         f"family (choose from auto, {', '.join(AUGMENT_BY_FAMILY[config.family])})"),
        (0.0 <= a.augment_p <= 1.0, f"augment.augment_p must be in [0, 1], got {a.augment_p}"),
        (0.0 < a.ada_target < 1.0, f"augment.ada_target must be in (0, 1), got {a.ada_target}"),
        (a.ada_images >= 1 and a.ada_interval >= 1,
         "augment.ada_images and augment.ada_interval must be at least 1"),
        (g.latent_dim >= 1 and g.mapping_layers >= 1,
         "gan.latent_dim and gan.mapping_layers must be at least 1"),
        (min(g.generator_channels, g.discriminator_channels, g.max_channels) >= 1,
         "gan.generator_channels, discriminator_channels and max_channels must be at least 1"),
        (g.r1_gamma is None or g.r1_gamma >= 0, f"gan.r1_gamma must be non-negative, got {g.r1_gamma}"),
        (g.r1_interval >= 1, f"gan.r1_interval must be at least 1, got {g.r1_interval}"),
        (0.0 <= config.data.max_bad_fraction <= 1.0,
         f"data.max_bad_fraction must be in [0, 1], got {config.data.max_bad_fraction}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    return config


# Every option by its plain name (e.g. "batch_size" -> "train"); names are unique across sections,
# which is what lets the CLI and the Python API take flat keyword options.
FLAT_FIELDS: dict[str, str] = {f.name: section for section, cls in SECTIONS.items() for f in fields(cls)}
assert len(FLAT_FIELDS) == sum(len(fields(cls)) for cls in SECTIONS.values()), "option names must be unique"


def nest_options(options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{"batch_size": 8, "source": "x"} -> {"train": {"batch_size": 8}, "data": {"source": "x"}}."""
    nested: dict[str, dict[str, Any]] = {}
    for name, value in options.items():
        if name not in FLAT_FIELDS:
            raise ConfigError(f"unknown option {name!r}")
        nested.setdefault(FLAT_FIELDS[name], {})[name] = value
    return nested


def make_config(preset: str | None = None, overrides: dict[str, dict[str, Any]] | None = None,
                family: str = "diffusion") -> RunConfig:
    """A RunConfig from the family's defaults, a named preset and per-section overrides, validated."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    merged: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for source in (FAMILY_DEFAULTS[family], PRESETS[preset][family] if preset else {},
                   overrides or {}):
        for section, values in source.items():
            if section not in SECTIONS:
                raise ConfigError(f"unknown config section {section!r} (known: {', '.join(SECTIONS)})")
            merged[section].update(values)
    sections = {name: build_section(cls, merged[name], name) for name, cls in SECTIONS.items()}
    return validate(RunConfig(family=family, **sections))


def check_family_options(family: str, options: dict[str, Any]) -> None:
    """Refuse options (flat names, as given by a user) that only the other family reads."""
    for name in options:
        section = FLAT_FIELDS.get(name)
        owners = [f for f, sections in FAMILY_SECTIONS.items() if section in sections]
        if owners and family not in owners:
            raise ConfigError(f"--{name.replace('_', '-')} is a {' and '.join(owners)} option; "
                              f"it has no effect with --family {family}")


def resolve_augment(config: RunConfig, items: int, item_shape: tuple[int, ...] = ()) -> RunConfig:
    """Replace --augment auto by the family's augmentation for a dataset of this many items (for
    continuous families only images are augmented: the transforms are geometric and photometric;
    discrete level models get the game's symmetries)."""
    if config.augment.augment != "auto":
        return config
    if config.family == "discrete":  # a level's symmetries give valid levels at any data size
        choice = AUGMENT_AUTO["discrete"] if config.data.kind == "level" else "off"
        return with_overrides(config, augment={"augment": choice})
    small = items < AUGMENT_AUTO_BELOW and len(item_shape) in (0, 3)
    choice = AUGMENT_AUTO[config.family] if small else "off"
    return with_overrides(config, augment={"augment": choice})


def config_from_dict(d: dict[str, Any]) -> RunConfig:
    """Inverse of RunConfig.to_dict, with the same validation as user input."""
    d = dict(d)
    family = d.pop("family", "diffusion")
    if "augment" not in d:  # written before augmentation existed: those runs trained without it
        d["augment"] = {"augment": "off"}
    unknown = set(d) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"unknown config section {sorted(unknown)[0]!r}")
    return make_config(None, d, family=family)


def with_overrides(config: RunConfig, **sections: dict[str, Any]) -> RunConfig:
    """A copy of config with some fields of some sections changed."""
    d = config.to_dict()
    for section, values in sections.items():
        d[section].update(values)
    return config_from_dict(d)


__all__ = ["FLAT_FIELDS", "nest_options", "DataConfig", "NetworkConfig", "DiffusionConfig",
           "GANConfig", "AugmentConfig", "TrainConfig", "RunConfig", "PRESETS", "SECTIONS",
           "FAMILIES", "make_config", "config_from_dict", "with_overrides", "check_family_options",
           "resolve_augment", "replace"]
