"""Configuration: small frozen dataclasses, named presets and a JSON round trip.

Each option is declared once, as a field with its default, help text, choices and check
(genforge.options); the CLI's flags, the Python API's keywords and the studio's forms are built
from these declarations. The data section is composed of the options every kind shares and each
content kind's own frozen options dataclass, declared in its modality (ImageOptions, ...): the
JSON stays flat ("data": {"source", "resolution", "bars", ...}) while each loader reads typed,
declared fields.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import ConfigError
from .modalities import MODALITIES
from .modalities.image import ImageOptions
from .modalities.level import LevelOptions
from .modalities.music import MusicOptions
from .music.dataset import SPLITS
from .options import Check, Declared, all_of, at_least, between, build, each, option
from .presets import FAMILY_DEFAULTS, PRESETS

# Upper bounds on sizes a config (a user's, or an exported model's config.json from anyone) may
# ask for, so a file cannot make genforge allocate absurd memory or loop for minutes.
# Measured by building networks on the meta device for a 3x64x64 image (benchmarks/fuzz.py's
# model-load reader found each): a U-Net of base width 1024 with mult (1,2,2,2) has 2.4 B
# parameters, 65,536 blocks hang the build for minutes, a GAN of width 2048 has 9.2 B.
MAX_WIDTH = 1024          # the U-Net's base width
MAX_GAN_WIDTH = 2048      # a GAN's generator or discriminator width
MAX_BLOCKS = 16           # residual blocks per level, mapping layers
MAX_BATCH = 65_536
MAX_PARAMETERS = 2_000_000_000  # the backstop: families.check_size builds on the meta device


@dataclass(frozen=True)
class DataConfig(ImageOptions, MusicOptions, LevelOptions):
    """The data section: what every kind shares, plus each kind's own options (inherited)."""

    kind: str = option("auto", "content kind of the data (auto: from the dataset name or the "
                       "files in the folder)", choices=("auto", *MODALITIES))
    source: str = option("fashion-mnist-sample", "a folder of images, music or levels, or a "
                         "dataset name (fashion-mnist, fashion-mnist-sample, bach-chorales, "
                         "sokoban, lode-runner)")
    root: str | None = option(None, "where a named dataset lies (default: search $GENFORGE_DATA, "
                              "Debian's /usr/share/datasets, the download cache)")
    download: bool = option(True, "download a named dataset from its official source when it "
                            "is not found locally")
    max_bad_fraction: float = option(0.1, "refuse to train when more than this share of files "
                                     "cannot be read", check=between(0.0, 1.0))
    split: str = option("train", "music and levels: which part of the fixed split to read: "
                        "train (80%), validation (10%), test (10%) or all; chorales split by tune "
                        "(genforge.music.dataset), levels by their tiles (genforge.levels.splits)",
                        choices=SPLITS)
    dedup: bool = option(False, "train on the first of each group of exact or near-duplicate "
                         "items only (see 'genforge audit'; changes the data fingerprint)")

    def __post_init__(self) -> None:
        for base in (ImageOptions, MusicOptions, LevelOptions):
            base.__post_init__(self)
        Declared.__post_init__(self)


# Which kind owns each data option (the others are shared): options of another kind are refused.
KIND_OPTIONS: dict[str, str] = {f.name: kind for kind, m in MODALITIES.items()
                                for f in fields(m.options_type)}


@dataclass(frozen=True)
class NetworkConfig(Declared):
    section = "network"
    model_channels: int = option(64, "U-Net base width",
                                 check=all_of(between(8, MAX_WIDTH), Check(lambda v: v % 8 == 0,
                                                                           "a multiple of 8")))
    channel_mult: tuple[int, ...] = option((1, 2, 2), "width multiplier per resolution level",
                                           check=all_of(Check(lambda v: 1 <= len(v) <= 8,
                                                              "1 to 8 levels"),
                                                        each(between(1, 16))))
    num_blocks: int = option(2, "residual blocks per level", check=between(1, MAX_BLOCKS))
    attn_resolutions: tuple[int, ...] = option((), "feature-map sides that get self-attention",
                                               check=each(at_least(1)))
    dropout: float = option(0.0, "dropout inside residual blocks", check=between(0.0, 1.0, open_high=True))
    patch_size: int = option(1, "fold p x p pixels into channels first (cheaper on CPU)",
                             check=between(1, 16))


@dataclass(frozen=True)
class DiffusionConfig(Declared):
    section = "diffusion"
    sigma_data: float = option(0.5, "data standard deviation assumed by EDM preconditioning",
                               check=between(1e-3, 100))
    sigma_min: float = option(0.002, "smallest noise level sampled", check=between(1e-6, 1e4, open_low=True))
    sigma_max: float = option(80.0, "largest noise level sampled", check=between(1e-6, 1e4, open_low=True))
    p_mean: float = option(-1.2, "mean of log-sigma during training (EDM P_mean)", check=between(-10, 10))
    p_std: float = option(1.2, "std of log-sigma during training (EDM P_std)",
                          check=between(0, 10, open_low=True))
    label_dropout: float = option(0.1, "share of labels dropped in training, for classifier-free "
                                  "guidance", check=between(0.0, 1.0, open_high=True))
    loss_weighting: str = option("edm", "how the loss weighs noise levels: edm (EDM's "
                                 "lambda(sigma)) or learned (EDM2: also by a learned "
                                 "uncertainty per level; the logged loss stays EDM's)",
                                 choices=("edm", "learned"))


@dataclass(frozen=True)
class ConsistencyConfig(Declared):
    """Easy Consistency Tuning of a trained diffusion model (families.consistency has the maths)."""

    section = "consistency"
    teacher_sha256: str = option("", "sha256 of the diffusion model's weights the tuning starts "
                                 "from (set by genforge distill)")
    stage_steps: int = option(200, "ECT's d: optimiser steps per stage; each stage brings r "
                              "closer to t by the factor --ratio-q", check=between(1, 10**9))
    # Later stages made the samples collapse: a tuning that went on past stage 7 fell from FD
    # 0.93 at 1,560 steps to 10.8 at 3,120; held at stage 4 it kept improving
    # (benchmarks/README.md, "Few-step").
    final_stage: int | None = option(4, "the last stage: from there on r stays as close to t as "
                                     "that stage brings it (none: no limit)",
                                     check=between(0, 1000))
    ratio_q: float = option(2.0, "ECT's q: how much closer r comes to t at each stage",
                            check=between(1.0, 1000.0, open_low=True))
    ratio_k: float = option(8.0, "ECT's k in n(t) = 1 + k sigmoid(-b t): low noise levels start "
                            "further apart", check=between(0.0, 1000.0))
    ratio_b: float = option(1.0, "ECT's b in n(t) = 1 + k sigmoid(-b t)", check=between(0.0, 1000.0))
    huber_c: float | None = option(None, "pseudo-Huber constant c of the consistency loss "
                                   "(default: 0.00054 sqrt(values per item), as iCT)",
                                   check=between(0.0, 100.0))


@dataclass(frozen=True)
class GANConfig(Declared):
    section = "gan"
    architecture: str = option("stylegan2", "GAN networks: stylegan2 (mapping network, modulated "
                               "convolutions, noise, skips; residual D), dcgan, or mlp for 1-D items",
                               choices=("stylegan2", "dcgan", "mlp"))
    latent_dim: int = option(128, "size of the generator's input latent z", check=between(1, 4096))
    mapping_layers: int = option(4, "layers of the StyleGAN2 mapping network", check=between(1, MAX_BLOCKS))
    generator_channels: int = option(32, "generator width at full resolution (doubles per halving)",
                                     check=between(1, MAX_GAN_WIDTH))
    discriminator_channels: int = option(32, "discriminator width at full resolution (doubles per "
                                         "halving)", check=between(1, MAX_GAN_WIDTH))
    max_channels: int = option(256, "cap on any layer's width", check=between(1, 4096))
    gan_loss: str = option("logistic", "non-saturating logistic (with R1) or hinge",
                           choices=("logistic", "hinge"))
    r1_gamma: float | None = option(None, "R1 gradient penalty weight (0: off; default: "
                                    "0.0002 x pixels / batch, the StyleGAN2-ADA heuristic)",
                                    check=at_least(0))
    r1_interval: int = option(16, "lazy regularisation: apply R1 every N steps, scaled by N",
                              check=at_least(1))


@dataclass(frozen=True)
class AugmentConfig(Declared):
    section = "augment"
    augment: str = option("auto", "augmentation: ada or diffaugment (GAN), nonleaking (diffusion), "
                          "symmetry (discrete: the game's own symmetries of a level); off; auto: "
                          "ada for GANs below 50,000 items, symmetry for discrete level models, "
                          "otherwise off",
                          choices=("auto", "off", "ada", "diffaugment", "nonleaking", "symmetry"))
    augment_p: float = option(0.12, "probability of each non-leaking augmentation (diffusion)",
                              check=between(0.0, 1.0))
    ada_target: float = option(0.6, "ADA: target E[sign(D(real))]; above it the augmentation grows",
                               check=between(0.0, 1.0, open_low=True, open_high=True))
    ada_images: int = option(100_000, "ADA: real images it takes p to move from 0 to 1",
                             check=at_least(1))
    ada_interval: int = option(4, "ADA: adjust p every N steps", check=at_least(1))


@dataclass(frozen=True)
class TrainConfig(Declared):
    section = "train"
    batch_size: int = option(64, "images per optimiser step (split over --grad-accum micro-batches)",
                             check=between(1, MAX_BATCH))
    grad_accum: int = option(1, "micro-batches per optimiser step", check=between(1, MAX_BATCH))
    lr: float = option(1e-3, "peak learning rate (AdamW)", check=between(0, 1, open_low=True))
    weight_decay: float = option(0.0, "AdamW weight decay", check=between(0, 10))
    warmup_steps: int = option(200, "linear learning-rate warm-up", check=at_least(0))
    lr_schedule: str = option("constant", "after warm-up: constant, or cosine decay to zero at the "
                              "end of the --steps or --minutes budget", choices=("constant", "cosine"))
    grad_clip: float = option(1.0, "clip the gradient norm to this (0: off)", check=at_least(0))
    ema_decay: float = option(0.999, "EMA decay of the weights that are exported",
                              check=between(0.0, 1.0, open_high=True))
    precision: str = option("auto", "bf16 autocast (auto: bf16 when the hardware runs it fast)",
                            choices=("auto", "fp32", "bf16"))
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    compile: bool = option(False, "torch.compile the networks for long runs: the first steps "
                           "compile (a minute or more, reported in the summary), later ones run "
                           "faster where the compiler fuses small operations")
    steps: int | None = option(None, "stop after this many optimiser steps", check=at_least(0))
    minutes: float | None = option(None, "stop after this much training time (summed over resumes)",
                                   check=between(0, 10**7, open_low=True))
    checkpoint_every: int = option(500, "write the training state every N steps", check=at_least(1))
    checkpoint_minutes: float = option(3.0, "and at least every this many minutes of wall time "
                                       "(a kill -9 or power cut loses at most that)",
                                       check=between(0, 10**6, open_low=True))
    sample_every: int = option(500, "write a sample grid every N steps (and at step 0)",
                               check=at_least(1))
    log_every: int = option(25, "append stats to stats.jsonl every N steps", check=at_least(1))
    preview_count: int = option(64, "samples in each preview grid", check=between(1, 1024))
    seed: int = option(0, "seed for weights, data order and noise", check=between(0, 2**63 - 1))
    tensorboard: bool = option(False, "also log to TensorBoard (needs the tensorboard package)")
    eval_every: int = option(0, "evaluate the EMA model every N steps and keep the best (0: off)",
                             check=at_least(0))
    eval_samples: int = option(2000, "samples per in-training evaluation", check=between(2, 10**6))
    eval_metric: str = option("fd", "metric that picks the best checkpoint (lower is better)",
                              choices=("fd", "kid"))
    eval_extractor: str | None = option(None, "feature extractor for in-training evaluation: an "
                                        "encoder file from 'genforge features train', or inception-v3")


@dataclass(frozen=True)
class RunConfig:
    family: str = option("diffusion", "model family: diffusion (continuous, EDM), gan, or discrete "
                         "(masked diffusion over symbols: music and levels); consistency: a "
                         "diffusion model tuned for 1-2 step sampling by genforge distill",
                         choices=("diffusion", "gan", "discrete", "consistency"))
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    gan: GANConfig = field(default_factory=GANConfig)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
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
SESSION_ONLY = ("steps", "minutes", "checkpoint_every", "checkpoint_minutes", "sample_every",
                "log_every", "preview_count", "tensorboard", "device", "compile", "eval_every",
                "eval_samples", "eval_metric", "eval_extractor")


SECTIONS = {"data": DataConfig, "network": NetworkConfig, "diffusion": DiffusionConfig,
            "gan": GANConfig, "consistency": ConsistencyConfig, "augment": AugmentConfig, "train": TrainConfig}
FAMILIES = ("diffusion", "gan", "discrete", "consistency")
# Sections only some families read; the others (data, augment, train) are shared.
FAMILY_SECTIONS = {"diffusion": ("network", "diffusion"), "gan": ("gan",), "discrete": ("network",),
                   "consistency": ("network", "diffusion", "consistency")}
AUGMENT_BY_FAMILY = {"diffusion": ("off", "nonleaking"), "gan": ("off", "ada", "diffaugment"),
                     "discrete": ("off", "symmetry"), "consistency": ("off", "nonleaking")}
# What --augment auto picks below AUGMENT_AUTO_BELOW items (above it: off). GANs get ADA. Diffusion
# stays off: in benchmarks/bench_small_data.py non-leaking augmentation doubled FD-domain at 1,000
# and at 60,000 images within 6 GPU-minutes (EDM's gains come from runs 500x longer), so it is a
# choice to make for long runs (--augment nonleaking), not a default.
AUGMENT_AUTO = {"gan": "ada", "diffusion": "off", "discrete": "symmetry", "consistency": "off"}
AUGMENT_AUTO_BELOW = 50_000
# Below this many items a model is likely to memorise its training data.
SMALL_DATASET = 1_000

def validate(config: RunConfig) -> RunConfig:
    """Check the rules that span fields (each field's own range is checked where it is declared)."""
    t, d = config.train, config.diffusion
    checks = [
        (t.batch_size % t.grad_accum == 0,
         f"train.batch_size ({t.batch_size}) must be a multiple of train.grad_accum ({t.grad_accum})"),
        (d.sigma_min < d.sigma_max, "diffusion.sigma_min must be below sigma_max"),
        (t.eval_every == 0 or t.eval_extractor,
         "in-training evaluation (--eval-every) needs --eval-extractor: an encoder file made by "
         "'genforge features train DATA', or inception-v3"),
        (config.augment.augment in ("auto", *AUGMENT_BY_FAMILY[config.family]),
         f"augment.augment: {config.augment.augment!r} does not apply to the {config.family} "
         f"family (choose from auto, {', '.join(AUGMENT_BY_FAMILY[config.family])})"),
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
    for source in (FAMILY_DEFAULTS[family], PRESETS[preset].get(family, {}) if preset else {},
                   overrides or {}):
        for section, values in source.items():
            if section not in SECTIONS:
                raise ConfigError(f"unknown config section {section!r} (known: {', '.join(SECTIONS)})")
            merged[section].update(values)
    sections = {name: build(cls, merged[name], name) for name, cls in SECTIONS.items()}
    return validate(RunConfig(family=family, **sections))


def check_family_options(family: str, options: dict[str, Any]) -> None:
    """Refuse options (flat names, as given by a user) that only the other family reads."""
    for name in options:
        section = FLAT_FIELDS.get(name)
        owners = [f for f, sections in FAMILY_SECTIONS.items() if section in sections]
        if owners and family not in owners:
            # a consistency model takes the network of the model it was tuned from: not named
            named = [f for f in owners if f != "consistency"] or ["genforge distill"]
            raise ConfigError(f"--{name.replace('_', '-')} is a {' and '.join(named)} option; "
                              f"it has no effect with --family {family}")


# Data options declared on DataConfig that only some kinds read (images have no split).
SHARED_KIND_OPTIONS: dict[str, tuple[str, ...]] = {"split": ("music", "level")}


def check_kind_options(kind: str, options: dict[str, Any]) -> None:
    """Refuse data options (flat names, as given by a user) that only other content kinds read."""
    for name in options:
        owners = (KIND_OPTIONS[name],) if name in KIND_OPTIONS else SHARED_KIND_OPTIONS.get(name)
        if owners and kind != "auto" and kind not in owners and options[name] is not None:
            raise ConfigError(f"--{name.replace('_', '-')} is a {' and '.join(owners)} data "
                              f"option; this data is {kind}")


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
    if not isinstance(d, dict):
        raise ConfigError(f"a run configuration must be an object, got {type(d).__name__}")
    d = dict(d)
    family = d.pop("family", "diffusion")
    if "augment" not in d:  # written before augmentation existed: those runs trained without it
        d["augment"] = {"augment": "off"}
    if isinstance(d.get("diffusion"), dict) and "loss_weighting" not in d["diffusion"]:
        # written before the weighting was learned: those models have no uncertainty head
        d["diffusion"] = {**d["diffusion"], "loss_weighting": "edm"}
    if isinstance(d.get("train"), dict) and "progress" in d["train"]:
        # written when the progress bar was a training option; it is the caller's choice now
        d["train"] = {k: v for k, v in d["train"].items() if k != "progress"}
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


__all__ = ["FLAT_FIELDS", "KIND_OPTIONS", "nest_options", "DataConfig", "NetworkConfig",
           "DiffusionConfig", "GANConfig", "ConsistencyConfig", "AugmentConfig", "TrainConfig", "RunConfig", "PRESETS",
           "SECTIONS", "FAMILIES", "make_config", "config_from_dict", "with_overrides",
           "check_family_options", "check_kind_options", "resolve_augment", "replace"]
