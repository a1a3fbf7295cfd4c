"""A trained model, loaded from its exported folder, ready to generate.

`GenerativeModel.generate` and `interpolate` live here; what only some content kinds do (music:
harmonize; levels: complete and the playability checks) lives in generation.music and
generation.levels as functions of the model, reached through the same object for convenience.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..data import data_config, open_data, open_training_data
from ..errors import CheckpointError, ConfigError, GenforgeError
from ..export import load_module
from ..families import FAMILIES, ModelSpec, sampling_options
from ..modalities import modality_for
from ..sampling import SeededNoise
from ..training.devices import resolve_device
from . import copies, display, levels, music
from .precision import (apply_layout, check_precision, choose_sampling_precision,
                        precision_record)
from .outputs import check_output, output_signer, write_gif, write_outputs
from .sampling import generate_items, slerp


class GenerativeModel:
    """An exported model, ready to generate. Build it with genforge.load(folder)."""

    def __init__(self, folder: Path, device: str = "auto", precision: str = "auto"):
        self.folder = Path(folder)
        self.device = resolve_device(device)
        self.precision = check_precision(precision)
        self._precision_choices: dict[str, dict] = {}
        self.module, self.spec, self.config, self.manifest = load_module(self.folder, self.device)
        self.modality = modality_for(self.spec)
        self.family = FAMILIES[self.config.family]
        health = self.manifest.get("training", {}).get("health") or {}
        if health.get("status", "ok") != "ok":
            warnings.warn(f"{self.folder}: this model's training was unstable ("
                          f"{'; '.join(health.get('notes', []))}); its samples may be noise")

    @property
    def name(self) -> str:
        """What records call the model: its folder's name, or its run's for RUN/model (never
        a path: records leave the machine with the files)."""
        folder = self.folder.resolve()
        return folder.parent.name if folder.name == "model" and folder.parent.name else folder.name

    @property
    def class_names(self) -> list[str]:
        return list(self.spec.class_names)

    def class_labels(self, n: int, class_label: int | str | None,
                     seeds: list[int] | None = None) -> torch.Tensor | None:
        """Per-sample labels: None gives seed s the class s mod K (so classes cycle, and a seed
        makes the same sample whatever it is drawn beside), -1 or 'none' means unconditional."""
        k = self.spec.num_classes
        if k == 0:
            if class_label not in (None, -1, "none"):
                raise ConfigError(f"this model has no classes; --class {class_label} cannot be used")
            return None
        if class_label is None:
            return (torch.as_tensor(seeds) if seeds is not None else torch.arange(n)) % k
        if class_label in (-1, "none"):
            return torch.full((n,), -1)
        if isinstance(class_label, str) and not class_label.lstrip("-").isdigit():
            if class_label not in self.spec.class_names:
                raise ConfigError(f"unknown class {class_label!r} (known: {', '.join(self.spec.class_names)})")
            return torch.full((n,), self.spec.class_names.index(class_label))
        index = int(class_label)
        if not 0 <= index < k:
            raise ConfigError(f"class {index} out of range: this model has classes 0..{k - 1}")
        return torch.full((n,), index)

    def sampling(self, *, inpainting: bool = False, spec: ModelSpec | None = None,
                 **given: Any) -> dict[str, Any]:
        """The sampling options a call with these would run with (the family's declared
        defaults, the content kind's, then the given ones), as the generation record has them."""
        return asdict(sampling_options(self.family, spec or self.spec, given,
                                       inpainting=inpainting))

    def sampling_precision(self, options: dict[str, Any], spec: ModelSpec | None = None) -> dict:
        """{precision, layout, why, ...}: what sampling with these options runs in (generation.
        precision), the network put in its layout; auto is measured once per options."""
        spec = spec or self.spec
        key = json.dumps([sorted(options.items()), list(spec.item_shape)], default=str)
        if key not in self._precision_choices:
            self._precision_choices[key] = choose_sampling_precision(
                self.precision, self.family, self.module, spec, self.config, options, self.device)
        choice = self._precision_choices[key]
        apply_layout(self.module, choice)  # each sampling call follows its own measured choice
        return choice

    def spec_for(self, item_shape: tuple[int, ...]) -> ModelSpec:
        """The model's spec for items of another shape (a longer piece): convolutional networks
        of the diffusion and discrete families take any length."""
        if self.config.family not in ("diffusion", "discrete", "consistency"):
            raise ConfigError(f"a {self.config.family} model makes items of one size; lengths "
                              "and given parts need a diffusion or discrete model")
        item_shape = tuple(int(s) for s in item_shape)
        return replace(self.spec, item_shape=item_shape,
                       tensor_shape=self.modality.model_shape(item_shape))

    def generate(self, n: int = 16, *, seed: int = 0, class_label: int | str | None = None,
                 batch_size: int = 64, reject_copies: bool = False,
                 train_data: str | None = None, watermark: bool = True, sign: bool = True,
                 signer=None, bars: int | None = None, audio: bool = False,
                 repair: bool = False, playable_only: bool = False,
                 min_moves: int | None = None, min_boxes: int | None = None,
                 display_size: int | None = None, display_resample: str | None = None,
                 out: str | Path | None = None, **sampling: Any) -> torch.Tensor:
        """n items (uint8 images [n, C, H, W], SATB codes, tile grids); item i uses seed + i
        whatever the batch size.

        sampling: the family's declared sampling options (diffusion: sampler, steps, guidance;
        GAN: truncation; discrete: sampler, steps, temperature, rules); see
        genforge.api.sampling_declarations(). reject_copies drops samples that copy a training
        item (nearest/second-nearest distance ratio below 1/3, as the memorisation metric) and
        draws the next seeds in their place; the training data is the model's own (or
        train_data). Images carry the invisible watermark naming the model unless watermark is
        False (recorded) or they are too small for it (recorded). Written files are signed with
        a C2PA manifest unless sign is False (recorded): by signer (a provenance.keys.LoadedSigner),
        else by the default keys, created on first use. bars sets a music model's length (its
        convolutions take any; default: the training crops'); audio adds a WAV per piece. Levels:
        repair fixes their structure (one player, as many boxes as goals, closed walls),
        playable_only draws further seeds until n levels pass the game's check (the acceptance
        rate is recorded), min_moves and min_boxes keep only levels at those minimums (see
        generation.levels.LevelFilter); every level's check is in its record. With out, writes one file per
        item (its generation record inside where the format allows), grid.png, generation.json
        and appends each record to generations.jsonl; display_size (and display_resample, see
        generation.display.DisplayOptions) adds a marked, signed display copy beside each image
        under the watermark's minimum.
        """
        if n < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        m = self.modality
        shown = display.display_options(display_size=display_size,
                                        display_resample=display_resample)
        keep = levels.level_filter(min_moves=min_moves, min_boxes=min_boxes)
        m.require(audio=audio, checks="--repair, --playable-only, --min-moves and --min-boxes"
                  if repair or playable_only or keep.active else None,
                  display=shown.display_size is not None)
        spec = self.spec if bars is None else self.spec_for(m.resized(self.spec.item_shape, bars))
        seeds = list(range(seed, seed + n))
        labels = self.class_labels(n, class_label, seeds)
        options = self.sampling(spec=spec, **sampling)
        if out is not None:
            check_output(out, n, spec.item_shape)
        signer = output_signer(sign, signer, out)
        computed = self.sampling_precision(options, spec)
        draw = lambda count, seeds, labels: generate_items(  # noqa: E731
            self.family, self.module, spec, self.config, count, seed=0, seeds=seeds,
            labels=labels, batch_size=batch_size, device=self.device,
            precision=computed["precision"], **options)
        items = draw(n, seeds, labels)
        rejected: list[dict] = []
        if reject_copies:
            items, seeds, rejected = copies.reject_copies(self, items, seeds, labels, draw,
                                                          train_data)
        checks, acceptance = None, None
        if m.has_checks:
            items, seeds, checks, acceptance = levels.check_items(
                self, items, seeds, labels, draw, batch_size=batch_size, repair=repair,
                playable_only=playable_only, keep=keep)
        sha = self.manifest.get("weights_sha256")
        items, mark = m.watermark(items, sha, watermark, signed=signer is not None)
        if out is not None:
            marked_copies = display.make(m, items, shown, sha, watermark, signer is not None)
            write_outputs(self, items, Path(out), seeds, labels,
                          {**options, **precision_record(computed)}, rejected=rejected,
                          mark=mark, signer=signer, audio=audio, item_info=checks,
                          summary={"playability": acceptance} if checks else None,
                          display=marked_copies)
        return items

    def interpolate(self, seeds: list[int], *, frames: int = 16, class_label: int | str | None = None,
                    loop: bool = True, out: str | Path | None = None, frame_ms: int = 80,
                    watermark: bool = True, sign: bool = True, signer=None,
                    display_size: int | None = None, display_resample: str | None = None,
                    **sampling: Any) -> torch.Tensor:
        """A walk through the latents of the given seeds (slerp, `frames` steps between each pair,
        back to the first when loop): items [k, ...]. With out, writes the frames, walk.gif and
        generation.json. The walk keeps the first seed's other noise, so frames change smoothly;
        for diffusion use a deterministic sampler (the default, dpmpp-2m). display_size: as
        generate's, one display copy per frame."""
        shown = display.display_options(display_size=display_size,
                                        display_resample=display_resample)
        self.modality.require(display=shown.display_size is not None)
        if len(seeds) < 2:
            raise ConfigError(f"interpolation needs at least two seeds, got {len(seeds)}")
        if frames < 1:
            raise ConfigError(f"frames must be at least 1, got {frames}")
        options = self.sampling(**sampling)
        if out is not None:
            check_output(out, frames * len(seeds) + 1, self.spec.item_shape)
        signer = output_signer(sign, signer, out)
        if options.get("sampler") in ("euler-ancestral",):
            raise ConfigError("interpolation needs a deterministic sampler; euler-ancestral adds "
                              "fresh noise at every step")
        shape = self.family.latent_shape(self.module, self.spec.model_shape)
        keys = [SeededNoise([s])(shape)[0] for s in seeds]
        if loop:
            keys.append(keys[0])
        latents = torch.stack([slerp(a, b, i / frames) for a, b in zip(keys, keys[1:])
                               for i in range(frames)] + ([] if loop else [keys[-1]]))
        labels = self.class_labels(len(latents), class_label)
        if labels is not None and class_label is None:
            # each keyframe in its seed's own class (as generate draws it); the class changes
            # halfway between two keyframes, so the walk passes through every seed's own sample
            own = self.class_labels(len(seeds), None, seeds).tolist()
            ends = own + ([own[0]] if loop else [])
            labels = torch.tensor([ends[j] if i < frames / 2 else ends[j + 1]
                                   for j in range(len(ends) - 1) for i in range(frames)]
                                  + ([] if loop else [ends[-1]]))
        computed = self.sampling_precision(options)
        items = generate_items(self.family, self.module, self.spec, self.config, len(latents),
                               seed=seeds[0], seeds=[seeds[0]] * len(latents), labels=labels,
                               device=self.device, latents=latents,
                               precision=computed["precision"], **options)
        sha = self.manifest.get("weights_sha256")
        items, mark = self.modality.watermark(items, sha, watermark, signed=signer is not None)
        if out is not None:
            out = Path(out)
            walk = {**options, **precision_record(computed), "interpolate": seeds,
                    "frames": frames, "loop": loop}
            write_gif(self, items, out / "walk.gif", frame_ms)
            marked_copies = display.make(self.modality, items, shown, sha, watermark,
                                         signer is not None)
            write_outputs(self, items, out, [seeds[0]] * len(items), labels, walk, mark=mark,
                          stems=[f"frame-{i:04d}" for i in range(len(items))], signer=signer,
                          extra=[out / "walk.gif"], display=marked_copies)
        return items

    # What only some kinds do, as methods with the functions' own signatures and docs (shells
    # build their parameters from them): music's harmonize, levels' complete.
    harmonize = music.harmonize
    complete = levels.complete

    def own_training_data(self):
        """The data this model was trained on, rebuilt from its config, or None when that no
        longer opens to the fingerprint in the manifest (moved, changed, deleted)."""
        try:
            data = open_training_data(self.config.data)[0]
        except GenforgeError:
            return None
        return data if data.fingerprint == self.manifest["dataset"]["fingerprint"] else None

    def training_items(self, train_data: str | None) -> torch.Tensor:
        """The training items for the copy check: train_data, or the model's own data when it
        still opens to the fingerprint in the manifest."""
        if train_data:
            return open_data(data_config(train_data)).items
        data = self.own_training_data()
        if data is None:
            raise ConfigError(f"--reject-copies needs the model's training data "
                              f"({self.manifest['dataset']['source']}), which is not at hand as "
                              "it was: pass --train-data DATA")
        return data.items

    def info(self) -> dict:
        """What the model is: family, content kind, shape, classes, size and provenance."""
        return {"folder": str(self.folder), "family": self.config.family,
                "kind": self.spec.modality, "item_shape": list(self.spec.item_shape),
                "classes": self.class_names,
                "parameters": sum(p.numel() for p in self.module.parameters()),
                "network": asdict(self.config.gan if self.config.family == "gan"
                                  else self.config.network),
                "augment": self.config.augment.augment, "manifest": self.manifest}


def load(folder: str | Path, device: str = "auto", precision: str = "auto") -> GenerativeModel:
    """Rebuild an exported model from its folder (config.json, model.safetensors, manifest.json).
    precision: what it samples in (auto, fp32, bf16; see generation.precision)."""
    folder = Path(folder)
    if not (folder / "model.safetensors").exists() and (folder / "model" / "model.safetensors").exists():
        raise CheckpointError(f"{folder} is a run folder; its exported model is {folder / 'model'}")
    return GenerativeModel(folder, device, precision)
