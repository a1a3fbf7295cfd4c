"""The one library surface: train, load, generate, info. The CLI (and later the web studio) call only this."""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from . import audit as auditing, io
from .config import (SMALL_DATASET, RunConfig, check_family_options, make_config, nest_options,
                     resolve_augment)
from .errors import ConfigError, DataError, GenforgeError
from .export import export_model, load_module
from .provenance import stamp, watermark as watermarking
from .provenance.model_card import write_model_card
from .families import FAMILIES, ModelSpec
from .modalities import MODALITIES, Dataset, guess_kind, modality_for
from .training.devices import resolve_device
from .version import __version__
from .metrics import registry
from .metrics.extractors import load_extractor
from .training.loop import TrainResult, train as run_loop

DEFAULT_PRESET = "cpu-small"
MAX_REJECTION_ROUNDS = 10  # --reject-copies redraws at most this often before calling it memorisation
MAX_BARS = 64
# One-hot notes are drowned by sigma ~10 already; starting there leaves fewer noisy steps in which
# the free voices commit before the given melody counts (measured in tests/test_music_inpaint.py).
HARMONIZE_SIGMA_MAX = 10.0
ITEM_KEYS = ("file", "seed", "class", "playable", "status", "solution_moves", "repaired")
MAX_PLAYABLE_TRIES = 20  # --playable-only draws at most this many times n levels


def resolve_config(data: str | None = None, preset: str | None = DEFAULT_PRESET,
                   family: str = "diffusion", **options: Any) -> RunConfig:
    """A validated RunConfig from a preset plus flat options (names as in the CLI, with underscores)."""
    check_family_options(family, options)
    if data is not None:
        options["source"] = data
    config = make_config(preset, nest_options(options), family=family)
    if config.data.kind == "auto":  # resolved once, so a stored config names its kind
        config = replace(config, data=replace(config.data, kind=guess_kind(config.data.source)))
    return config


def train(data: str | None = None, run: str | Path = "runs/genforge", *,
          preset: str | None = DEFAULT_PRESET, family: str = "diffusion",
          config: RunConfig | None = None, **options: Any) -> dict:
    """Train (or resume, if run already holds a checkpoint) and export the model to run/model.

    Example: genforge.train("fashion-mnist-sample", "runs/demo", minutes=4)
    Returns the run summary (also written to run/summary.json).
    """
    config = config or resolve_config(data, preset, family, **options)
    run = Path(run)
    modality = MODALITIES[config.data.kind]
    dataset, audit_record = open_training_data(config.data)
    for message in audit_record["warnings"]:
        warnings.warn(message)
    config = resolve_augment(config, len(dataset), dataset.item_shape)
    if len(dataset) < SMALL_DATASET:
        warnings.warn(f"{dataset.source} holds only {len(dataset)} items: a model trained on so few "
                      "is likely to copy them; check with 'genforge evaluate MODEL --data DATA' "
                      "(memorised_share); augmentation (--augment ada for GANs, nonleaking for "
                      "long diffusion runs, symmetry for discrete level models) makes copying "
                      "less likely")
    run.mkdir(parents=True, exist_ok=True)
    io.write_json(run / "data_report.json", {"source": dataset.source, **dataset.report.to_dict()})
    io.write_json(run / "audit.json", audit_record)
    dataset_info = _dataset_info(dataset)

    def export(module, spec: ModelSpec, progress) -> None:
        export_model(run / "model", module, spec, config, dataset=dataset_info,
                     training={"steps": progress.step, "images_seen": progress.images_seen,
                               "seconds": round(progress.elapsed_s, 1)})

    started = time.perf_counter()
    result = run_loop(run, config, dataset, FAMILIES[config.family], modality, on_export=export,
                      on_evaluate=_in_training_evaluator(run, config, dataset, modality))
    summary = _summary(result, config, dataset_info, dataset.report.summary(),
                       time.perf_counter() - started)
    summary["audit"] = auditing.short_line(audit_record)
    io.write_json(run / "summary.json", summary)
    io.write_text(run / "summary.md", summary_markdown(summary))
    return summary


def _dataset_info(dataset) -> dict:
    return {"source": dataset.source, "fingerprint": dataset.fingerprint,
            "items": len(dataset), "item_shape": list(dataset.item_shape),
            "class_names": dataset.class_names if dataset.labels is not None else []}


def _summary(result: TrainResult, config: RunConfig, dataset: dict, report: str,
             session_s: float) -> dict:
    p = result.progress
    samples = sorted((result.run_dir / "samples").glob("step-*.png"))
    return {
        "status": result.status, "run": str(result.run_dir), "model": str(result.run_dir / "model"),
        "latest_samples": str(samples[-1]) if samples else None,
        "family": config.family, "preset_hash": config.hash(), "dataset": dataset,
        "data_report": report, "parameters": result.parameters, "device": result.device,
        "precision": result.precision, "steps": p.step, "images_seen": p.images_seen,
        "training_seconds": round(p.elapsed_s, 1), "session_seconds": round(session_s, 1),
        "images_per_second": round(p.images_seen / p.elapsed_s, 1) if p.elapsed_s else None,
        "final_loss": p.last_loss, "best": _best(result.run_dir),
    }


def _best(run: Path) -> dict | None:
    """The in-training evaluation's best model so far: metric, value, step (None without one)."""
    manifest = run / "best" / "manifest.json"
    return io.read_json(manifest)["training"].get("best") if manifest.exists() else None


def summary_markdown(s: dict) -> str:
    """The run summary as a few lines of Markdown (also written to RUN/summary.md)."""
    d = s["dataset"]
    classes = f", {len(d['class_names'])} classes" if d["class_names"] else ""
    return (f"# genforge run: {s['status']}\n\n"
            f"- data: {d['source']} ({d['items']} items, shape {d['item_shape']}{classes}); {s['data_report']}\n"
            f"- model: {s['family']}, {s['parameters']:,} parameters, trained on {s['device']} ({s['precision']})\n"
            f"- training: {s['steps']} steps, {s['images_seen']:,} images in {s['training_seconds']} s"
            f" ({s['images_per_second']} images/s), final loss {s['final_loss']}\n"
            + (f"- audit: {s['audit']} (see {Path(s['run']) / 'audit.json'})\n" if s.get("audit") else "")
            + f"- exported model: {s['model']}\n- latest sample grid: {s['latest_samples']}\n"
            + (f"- best by {s['best']['metric']}: {s['best']['value']:.5g} at step "
               f"{s['best']['step']} (exported to {Path(s['run']) / 'best'})\n" if s.get("best") else ""))


def sampling_options(family, **options: Any) -> dict[str, Any]:
    """The generation options given (not None), refused when the family does not take them."""
    given = {k: v for k, v in options.items() if v is not None}
    for name in given:
        if name not in family.sample_options:
            raise ConfigError(f"--{name} does not apply to a {family.name} model (its options: "
                              f"{', '.join('--' + o for o in family.sample_options)})")
    return given


def default_sampling(family, spec: ModelSpec | None = None) -> dict[str, Any]:
    """The sampling options a model of this family and spec uses when none are given: the
    family's, overridden by the content kind's where it has better ones (music's)."""
    kind = modality_for(spec) if spec is not None else None
    own = getattr(kind, "sampling_defaults", None)
    return {**family.sample_options,
            **(own(family.name, tuple(spec.item_shape)) if own is not None else {})}


def generate_items(family, module: torch.nn.Module, spec: ModelSpec, config: RunConfig, n: int, *,
                   seed: int, labels: torch.Tensor | None, batch_size: int = 64,
                   device: torch.device | str = "cpu", latents: torch.Tensor | None = None,
                   seeds: list[int] | None = None, **options: Any) -> torch.Tensor:
    """n integer items from a module; item i uses seed + i (or seeds[i]) whatever the batch size.

    options are the family's sampling options (sampler, steps, guidance; truncation;
    temperature); latents, one row per item, replace the seeds' own starting latents.
    """
    modality = modality_for(spec)
    options = {**default_sampling(family, spec), **sampling_options(family, **options)}
    seeds = seeds if seeds is not None else list(range(seed, seed + n))
    chunks = []
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        x = family.sample(module, seeds[start:stop],
                          None if labels is None else labels[start:stop],
                          item_shape=spec.model_shape, device=device, config=config, spec=spec,
                          latents=None if latents is None else latents[start:stop], **options)
        chunks.append(modality.from_model(x.cpu()))
    return torch.cat(chunks)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between two Gaussian latents: intermediate points keep the norm a
    Gaussian sample has (a straight line through the middle would pass through unlikely latents)."""
    if t in (0, 1):  # exactly the keyframes, so a walk starts at its seed's own sample
        return (a if t == 0 else b).clone()
    a_flat, b_flat = a.flatten().double(), b.flatten().double()
    cos = torch.dot(a_flat, b_flat) / (a_flat.norm() * b_flat.norm())
    omega = torch.arccos(cos.clamp(-1, 1))
    if omega.abs() < 1e-6:
        return ((1 - t) * a + t * b)
    mixed = (torch.sin((1 - t) * omega) * a_flat + torch.sin(t * omega) * b_flat) / torch.sin(omega)
    return mixed.reshape(a.shape).to(a.dtype)


def _output_signer(sign: bool, signer, out):
    """The signer for files written to out (None when nothing is written or signing is off),
    resolved before sampling so that a certificate problem costs no time."""
    return (signer or stamp.default_signer()) if sign and out is not None else None


class GenerativeModel:
    """An exported model, ready to generate. Build it with genforge.load(folder)."""

    def __init__(self, folder: Path, device: str = "auto"):
        self.folder = Path(folder)
        self.device = resolve_device(device)
        self.module, self.spec, self.config, self.manifest = load_module(self.folder, self.device)
        self.modality = modality_for(self.spec)
        self.family = FAMILIES[self.config.family]

    @property
    def class_names(self) -> list[str]:
        return list(self.spec.class_names)

    def class_labels(self, n: int, class_label: int | str | None) -> torch.Tensor | None:
        """Per-sample labels: None cycles through the classes, -1 or 'none' means unconditional."""
        k = self.spec.num_classes
        if k == 0:
            if class_label not in (None, -1, "none"):
                raise ConfigError(f"this model has no classes; --class {class_label} cannot be used")
            return None
        if class_label is None:
            return torch.arange(n) % k
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

    def generate(self, n: int = 16, *, seed: int = 0, sampler: str | None = None,
                 steps: int | None = None, guidance: float | None = None,
                 truncation: float | None = None, temperature: float | None = None,
                 rules: bool | None = None, class_label: int | str | None = None,
                 batch_size: int = 64,
                 reject_copies: bool = False,
                 train_data: str | None = None, watermark: bool = True, sign: bool = True,
                 signer=None, bars: int | None = None, audio: bool = False,
                 repair: bool = False, playable_only: bool = False,
                 out: str | Path | None = None) -> torch.Tensor:
        """n items (uint8 images [n, C, H, W]); item i uses seed + i whatever the batch size.

        Diffusion models take sampler, steps and guidance; GANs take truncation (1: none; lower
        trades variety for typical samples); discrete models take sampler (ancestral or
        confidence), steps, temperature (below 1: safer, less varied) and rules (mend what breaks
        the content kind's rules, such as parallel fifths, with the model's help). reject_copies drops
        samples that copy a training item (nearest/second-nearest distance ratio below 1/3, as
        the memorisation metric) and
        draws the next seeds in their place; the training data is the model's own (or
        train_data). Images carry the invisible watermark naming the model unless watermark is
        False (recorded) or they are too small for it (recorded). Written files are signed with
        a C2PA manifest unless sign is False (recorded): by signer (a provenance.keys.LoadedSigner),
        else by the default keys, created on first use. bars sets a music model's length (its
        convolutions take any; default: the training crops'); audio adds a WAV per piece. Levels:
        repair fixes their structure (one player, as many boxes as goals, closed walls),
        playable_only draws further seeds until n levels pass the game's check (the acceptance
        rate is recorded); every level's check is in its record. With out, writes one PNG per
        item (its generation record inside), grid.png, generation.json and appends each record
        to generations.jsonl.
        """
        if n < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        labels = self.class_labels(n, class_label)
        options = sampling_options(self.family, sampler=sampler, steps=steps, guidance=guidance,
                                   truncation=truncation, temperature=temperature,
                                   rules=rules or None)
        signer = _output_signer(sign, signer, out)
        seeds = list(range(seed, seed + n))
        spec = self._spec_for(bars, audio, repair or playable_only)
        items = generate_items(self.family, self.module, spec, self.config, n, seed=seed,
                               labels=labels, batch_size=batch_size, device=self.device, **options)
        rejected: list[dict] = []
        if reject_copies:
            items, seeds, rejected = self._reject_copies(items, seeds, labels, train_data,
                                                         batch_size, options)
        checks, acceptance = None, None
        if repair or playable_only or self.spec.modality == "level":
            items, seeds, checks, acceptance = self._check_levels(
                items, seeds, labels, batch_size, options, repair, playable_only)
        items, mark = self._watermark(items, watermark)
        if out is not None:
            self._write(items, Path(out), seeds, labels,
                        {**default_sampling(self.family, self.spec), **options},
                        rejected=rejected, mark=mark, signer=signer, audio=audio,
                        item_info=checks, summary={"playability": acceptance} if checks else None)
        return items

    def _check_levels(self, items, seeds, labels, batch_size, options, repair, playable_only):
        """Levels checked (and repaired when asked); with playable_only the unplayable ones are
        replaced by the next seeds' until n pass, giving up after MAX_PLAYABLE_TRIES * n draws."""
        from .levels.playable import check_levels
        legend = self.modality.legend
        items, checks = check_levels(items, legend, repair=repair)
        n, tried, next_seed = len(items), len(items), max(seeds) + 1
        keep = [i for i, c in enumerate(checks) if c["playable"] or not playable_only]
        items, seeds = items[keep], [seeds[i] for i in keep]
        checks = [checks[i] for i in keep]
        while len(items) < n and tried < MAX_PLAYABLE_TRIES * n:
            draw = list(range(next_seed, next_seed + batch_size))
            next_seed += batch_size
            more = generate_items(self.family, self.module, self.spec, self.config, len(draw),
                                  seed=0, seeds=draw, labels=None if labels is None else
                                  labels[:1].expand(len(draw)), batch_size=batch_size,
                                  device=self.device, **options)
            more, more_checks = check_levels(more, legend, repair=repair)
            tried += len(draw)
            good = [i for i, c in enumerate(more_checks) if c["playable"]][:n - len(items)]
            items = torch.cat([items, more[good]])
            seeds += [draw[i] for i in good]
            checks += [more_checks[i] for i in good]
        if len(items) < n:
            raise GenforgeError(f"only {len(items)} of {tried} generated levels were playable "
                                f"(after {MAX_PLAYABLE_TRIES} x {n} draws): train longer"
                                + ("" if repair else ", or add --repair"))
        accepted = n if playable_only else sum(c["playable"] for c in checks)
        acceptance = {"tried": tried, "playable": accepted,
                      "acceptance_rate": round(accepted / tried, 4),
                      "repaired": sum(c["repaired"] for c in checks), "repair": repair,
                      "playable_only": playable_only}
        return items, seeds, checks, acceptance

    def _spec_for(self, bars: int | None, audio: bool = False, level_checks: bool = False) -> ModelSpec:
        """The model's spec, or one for pieces of `bars` bars (music from a diffusion model);
        options the model's kind cannot take are refused here, before any sampling."""
        if audio and not hasattr(self.modality, "render_audio"):
            raise ConfigError(f"--wav renders music; this model makes {self.spec.modality} items")
        if level_checks and self.spec.modality != "level":
            raise ConfigError(f"--repair and --playable-only are for level models; this model "
                              f"makes {self.spec.modality} items")
        if bars is None:
            return self.spec
        self._require_diffusion("music", "--bars sets the length of music from a diffusion model")
        if not 1 <= bars <= MAX_BARS:
            raise ConfigError(f"--bars must be between 1 and {MAX_BARS}, got {bars}")
        from .music.representation import STEPS_PER_BAR
        shape = (*self.spec.item_shape[:-1], bars * STEPS_PER_BAR)
        return replace(self.spec, item_shape=shape, tensor_shape=self.modality.model_shape(shape))

    def harmonize(self, melody: str | Path, *, n: int = 4, seed: int = 0, voices: str = "S",
                  steps: int = 32, sigma_max: float = HARMONIZE_SIGMA_MAX, resample: int = 2,
                  rules: bool = False, sign: bool = True, signer=None, audio: bool = False,
                  out: str | Path | None = None) -> torch.Tensor:
        """n four-part settings of a melody (or of any voices of a four-part file): the given
        voices come back exactly, the model fills in the rest by inpainting. voices: which parts
        of the file are given, as letters of SATB (a one-part file is the soprano). rules
        (discrete models): re-pitch the generated notes that make parallel fifths or octaves."""
        from .music import harmonize as harmonizing
        from .sampling import conditional
        self._require_diffusion("music", "harmonising needs a music diffusion model")
        given_voices = tuple(sorted({"SATB".index(v) for v in voices.upper() if v in "SATB"}))
        if not given_voices or len(given_voices) != len(set(voices.upper())) or len(given_voices) == 4:
            raise ConfigError(f"--voices takes one to three of the letters S, A, T, B, got {voices!r}")
        if n < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        signer = _output_signer(sign, signer, out)
        codes, mask = harmonizing.read_given(melody, given_voices)
        seeds = list(range(seed, seed + n))
        given = torch.from_numpy(codes)[None].expand(n, *codes.shape)
        given_mask = torch.from_numpy(mask)[None].expand(n, *mask.shape)
        self.module.eval()
        if self.config.family == "discrete":
            items = self._inpaint(given, given_mask, seeds, steps, rules).numpy()
            items = torch.from_numpy(harmonizing.force_given(items, given.numpy(), given_mask.numpy()))
            params = {"harmonize": str(melody), "given_voices": voices.upper(), "steps": steps,
                      "sampler": "inpaint-masked", "rules": rules}
        else:
            if rules:
                raise ConfigError("--rules needs a discrete model (the sampler mends its symbols)")
            with torch.no_grad():
                items = harmonizing.harmonize(conditional(self.module, None), given, given_mask,
                                              seeds, steps=steps, sigma_max=sigma_max,
                                              resample=resample)
            params = {"harmonize": str(melody), "given_voices": voices.upper(), "steps": steps,
                      "sigma_max": sigma_max, "resample": resample, "sampler": "inpaint-euler"}
        if out is not None:
            self._write(items, Path(out), seeds, None, params,
                        mark=self._watermark(items, False)[1], signer=signer, audio=audio)
        return items

    def complete(self, partial: str | Path, *, n: int = 4, seed: int = 0, steps: int = 32,
                 repair: bool = False, rules: bool = False, sign: bool = True, signer=None,
                 out: str | Path | None = None) -> torch.Tensor:
        """n completions of a partial level (a text grid in the game's characters, '?' where
        tiles are to be generated): the given tiles come back exactly, the model fills the rest
        by inpainting; each completion's playability is checked and recorded. rules (discrete
        Sokoban models): the model mends the generated tiles' border, boxes and goals."""
        from .levels import complete as completing
        from .levels.playable import check_levels
        self._require_diffusion("level", "completing levels needs a level diffusion model")
        if n < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        signer = _output_signer(sign, signer, out)
        grid, mask = completing.read_partial(partial, self.modality.legend, self.spec.item_shape[-2:])
        seeds = list(range(seed, seed + n))
        self.module.eval()
        if self.config.family == "discrete":
            given = torch.from_numpy(grid)[None].expand(n, *grid.shape)
            given_mask = torch.from_numpy(mask)[None].expand(n, *mask.shape)
            items, sampler = self._inpaint(given, given_mask, seeds, steps, rules), "inpaint-masked"
        else:
            if rules:
                raise ConfigError("--rules needs a discrete model (the sampler mends its symbols)")
            items = completing.complete(self.module, self.modality, grid, mask, seeds, steps=steps)
            sampler = "inpaint-euler-ancestral"
        items, checks = check_levels(items, self.modality.legend, repair=repair)
        if out is not None:
            params = {"complete": str(partial), "given_tiles": int(mask.sum()), "steps": steps,
                      "sampler": sampler, "repair": repair, "rules": rules}
            self._write(items, Path(out), seeds, None, params, item_info=checks,
                        mark=self._watermark(items, False)[1], signer=signer)
        return items

    def _inpaint(self, given: torch.Tensor, given_mask: torch.Tensor, seeds: list[int],
                 steps: int, rules: bool = False) -> torch.Tensor:
        """Items shaped like `given` from a discrete model: the given_mask entries kept, the rest
        drawn (the masked model never hides them, so they are exact by construction)."""
        shape = tuple(given.shape[1:])
        spec = replace(self.spec, item_shape=shape, tensor_shape=self.modality.model_shape(shape))
        x = self.family.sample(self.module, seeds, None, item_shape=spec.model_shape,
                               device=self.device, config=self.config, spec=spec, steps=steps,
                               given=given, given_mask=given_mask, rules=rules)
        return self.modality.from_model(x.cpu())

    def _require_diffusion(self, kind: str, lead: str) -> None:
        """A one-line error unless this is a (continuous or discrete) diffusion model of `kind`
        (lengths and inpainting need a denoiser over the item grid)."""
        if self.spec.modality != kind or self.config.family not in ("diffusion", "discrete"):
            raise ConfigError(f"{lead}; this is a {self.spec.modality} {self.config.family} model")

    def _watermark(self, items: torch.Tensor, enabled: bool) -> tuple[torch.Tensor, dict]:
        """Items with the invisible watermark where the kind and size allow, and its record."""
        if self.spec.modality != "image":
            return items, {"applied": False, "reason": f"{self.spec.modality} items carry no "
                           "pixel watermark; provenance rests on the signed pack and the log"}
        return stamp.mark_images(items, self.manifest.get("weights_sha256"), enabled=enabled)

    def _reject_copies(self, items, seeds, labels, train_data, batch_size, options):
        """Replace samples whose nearest training item is a likely copy by the next seeds."""
        from .metrics import maths
        from .metrics.registry import COPY_RATIO, pixel_vectors
        training = pixel_vectors(self._training_items(train_data), self.device)
        items, seeds, rejected = items.clone(), list(seeds), []
        next_seed, todo = max(seeds) + 1, list(range(len(items)))
        for _ in range(MAX_REJECTION_ROUNDS):
            nearest = maths.nearest_training_items(pixel_vectors(items[todo], self.device), training)
            copies = [(i, int(j), float(r)) for i, j, r in
                      zip(todo, nearest.index, nearest.ratio) if r < COPY_RATIO]
            if not copies:
                return items, seeds, rejected
            rejected += [{"seed": seeds[i], "nearest_training_item": j, "ratio": round(r, 4)}
                         for i, j, r in copies]
            todo = [i for i, _, _ in copies]
            for i in todo:
                seeds[i], next_seed = next_seed, next_seed + 1
            redo_labels = None if labels is None else labels[todo]
            items[todo] = generate_items(self.family, self.module, self.spec, self.config,
                                         len(todo), seed=0, seeds=[seeds[i] for i in todo],
                                         labels=redo_labels, batch_size=batch_size,
                                         device=self.device, **options)
        raise GenforgeError(f"{len(todo)} samples were still copies of training items after "
                            f"{MAX_REJECTION_ROUNDS} redraws: this model memorises its data")

    def own_training_data(self):
        """The data this model was trained on, rebuilt from its config, or None when that no
        longer opens to the fingerprint in the manifest (moved, changed, deleted)."""
        try:
            data = open_training_data(self.config.data)[0]
        except GenforgeError:
            return None
        return data if data.fingerprint == self.manifest["dataset"]["fingerprint"] else None

    def _training_items(self, train_data: str | None) -> torch.Tensor:
        """The training items for the copy check: train_data, or the model's own data when it
        still opens to the fingerprint in the manifest."""
        if train_data:
            return self.modality.open(resolve_config(train_data, None).data).items
        data = self.own_training_data()
        if data is None:
            raise ConfigError(f"--reject-copies needs the model's training data "
                              f"({self.manifest['dataset']['source']}), which is not at hand as "
                              "it was: pass --train-data DATA")
        return data.items

    def interpolate(self, seeds: list[int], *, frames: int = 16, class_label: int | str | None = None,
                    loop: bool = True, out: str | Path | None = None, frame_ms: int = 80,
                    watermark: bool = True, sign: bool = True, signer=None,
                    **options: Any) -> torch.Tensor:
        """A walk through the latents of the given seeds (slerp, `frames` steps between each pair,
        back to the first when loop): items [k, ...]. With out, writes the frames, walk.gif and
        generation.json. The walk keeps the first seed's other noise, so frames change smoothly;
        for diffusion use a deterministic sampler (the default, dpmpp-2m)."""
        if len(seeds) < 2:
            raise ConfigError(f"interpolation needs at least two seeds, got {len(seeds)}")
        if frames < 1:
            raise ConfigError(f"frames must be at least 1, got {frames}")
        options = sampling_options(self.family, **options)
        signer = _output_signer(sign, signer, out)
        if options.get("sampler") in ("euler-ancestral",):
            raise ConfigError("interpolation needs a deterministic sampler; euler-ancestral adds "
                              "fresh noise at every step")
        from .sampling import SeededNoise
        shape = self.family.latent_shape(self.module, self.spec.model_shape)
        keys = [SeededNoise([s])(shape)[0] for s in seeds]
        if loop:
            keys.append(keys[0])
        latents = torch.stack([slerp(a, b, i / frames) for a, b in zip(keys, keys[1:])
                               for i in range(frames)] + ([] if loop else [keys[-1]]))
        labels = self.class_labels(len(latents), class_label)
        if labels is not None and class_label is None:
            labels = torch.full((len(latents),), int(labels[0]))  # one class along the walk
        items = generate_items(self.family, self.module, self.spec, self.config, len(latents),
                               seed=seeds[0], seeds=[seeds[0]] * len(latents), labels=labels,
                               device=self.device, latents=latents, **options)
        items, mark = self._watermark(items, watermark)
        if out is not None:
            out = Path(out)
            walk = {**default_sampling(self.family, self.spec), **options, "interpolate": seeds,
                    "frames": frames, "loop": loop}
            self._write_gif(items, out / "walk.gif", frame_ms)
            self._write(items, out, [seeds[0]] * len(items), labels, walk, mark=mark,
                        stems=[f"frame-{i:04d}" for i in range(len(items))], signer=signer,
                        extra=[out / "walk.gif"])
        return items

    def _write_gif(self, items: torch.Tensor, path: Path, frame_ms: int) -> None:
        """An animated GIF of the items, scaled up (nearest) to at least 256 px on the short side."""
        from PIL import Image
        pictures = [self.modality.preview(items[i:i + 1]) for i in range(len(items))]
        scale = max(1, -(-256 // min(pictures[0].size)))
        pictures = [p.convert("RGB").resize((p.width * scale, p.height * scale), Image.NEAREST)
                    for p in pictures]
        io.write_with(path, lambda tmp: pictures[0].save(
            tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0))

    def _write(self, items: torch.Tensor, out: Path, seeds: list[int],
               labels: torch.Tensor | None, params: dict, stems: list[str] | None = None,
               rejected: list[dict] | None = None, mark: dict | None = None, signer=None,
               extra: list[Path] = (), audio: bool = False, item_info: list[dict] | None = None,
               summary: dict | None = None) -> None:
        """Files, grid and the generation record: in each file's metadata, generation.json and
        an append-only generations.jsonl, with everything needed to regenerate and trace it."""
        out.mkdir(parents=True, exist_ok=True)
        stems = stems or [f"{s:06d}" for s in seeds]
        model = {"model": str(self.folder), "model_sha256": self.manifest.get("weights_sha256"),
                 "family": self.config.family, "genforge_version": __version__}
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        records = [{**model, "file": f"{stem}.png", "seed": s,
                    "class": None if labels is None or labels[i] < 0 else self.spec.class_names[labels[i]],
                    **params, **(item_info[i] if item_info else {}), "watermark": mark,
                    "c2pa": stamp.signing_record(signer), "created": created}
                   for i, (stem, s) in enumerate(zip(stems, seeds))]
        paths = self.modality.write(items, out, stems, metadata=records)
        if audio:  # before signing, so the WAVs are signed too
            params["audio"] = self.modality.render_audio(items, out, stems)
        for record, path in zip(records, paths):
            record["file"] = path.name
        grid = self.modality.preview(items)
        io.write_with(out / "grid.png", lambda tmp: grid.save(tmp, format="PNG"))
        packs = [] if signer is None else stamp.sign_outputs(
            out, stems, records, signer, self.manifest["dataset"]["fingerprint"],
            extra=[out / "grid.png", *extra])
        io.write_json(out / "generation.json", {**model, **params, "created": created,
                                                **(summary or {}),
                                                "watermark": mark, "c2pa": records[0]["c2pa"],
                                                "signed_packs": [p.name for p in packs],
                                                "rejected_copies": rejected or [],
                                                "items": [{k: r[k] for k in ITEM_KEYS if k in r}
                                                          for r in records]})
        io.append_jsonl(out / "generations.jsonl", records)

    def info(self) -> dict:
        """What the model is: family, content kind, shape, classes, size and provenance."""
        return {"folder": str(self.folder), "family": self.config.family,
                "kind": self.spec.modality, "item_shape": list(self.spec.item_shape),
                "classes": self.class_names,
                "parameters": sum(p.numel() for p in self.module.parameters()),
                "network": asdict(self.config.gan if self.config.family == "gan"
                                  else self.config.network),
                "augment": self.config.augment.augment, "manifest": self.manifest}


def load(folder: str | Path, device: str = "auto") -> GenerativeModel:
    """Rebuild an exported model from its folder (config.json, model.safetensors, manifest.json)."""
    return GenerativeModel(Path(folder), device)


# ----- provenance checks ---------------------------------------------------------------------------

def init_keys(folder: str | Path | None = None, *, name: str | None = None, days: int | None = None,
              force: bool = False) -> dict:
    """Create a local development PKI for C2PA signing; returns its description (keys.json)."""
    from .provenance import keys
    options = {k: v for k, v in (("common_name", name), ("days", days)) if v is not None}
    paths = keys.init_keys(folder, force=force, **options)
    return {"folder": str(paths.folder), **keys.describe_keys(paths.folder)}


def signer(keys: str | Path | None = None, *, cert: str | Path | None = None,
           key: str | Path | None = None, tsa_url: str | None = None):
    """A checked C2PA signer: cert and key, else the keys folder's (created on first use)."""
    return stamp.default_signer(keys, cert=cert, key=key, tsa_url=tsa_url)


def describe_keys(folder: str | Path | None = None) -> dict:
    """What a keys folder holds (its keys.json), or a one-line error when it holds none."""
    from .provenance import keys
    info = keys.describe_keys(folder)
    if not info:
        raise ConfigError(f"no signing keys in {folder or keys.default_keys_dir()}: run "
                          "'genforge keys init'")
    return {"folder": str(folder or keys.default_keys_dir()), **info}


def verify(paths: list[str | Path], *, trust: str | Path | None = None) -> list:
    """Validate each file's C2PA manifest: provenance.signing.VerifyReport per file."""
    from .provenance import signing
    return [signing.verify_file(path, trust) for path in paths]


def detect(paths: list[str | Path], *, model: str | Path | None = None) -> list[dict]:
    """Look for genforge's watermark in image files: one record per file (found, payload,
    confidence, and whether the payload names `model` when one is given)."""
    from PIL import Image, UnidentifiedImageError
    import numpy as np
    expected = None
    if model is not None:
        sha = io.read_json(Path(model) / "manifest.json", "model manifest").get("weights_sha256")
        expected = stamp.payload_hex(stamp.payload_for(sha)) if sha else None
    results = []
    for path in map(Path, paths):
        try:
            with Image.open(path) as img:
                img = img.convert("RGBA" if "A" in img.getbands() else
                                  "L" if img.mode in ("1", "L", "I", "I;16", "F") else "RGB")
                array = np.asarray(img)
        except FileNotFoundError:
            raise DataError(f"{path}: no such file") from None
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"{path}: not an image Pillow can read ({e})") from None
        found = watermarking.detect(array)
        record = {"file": str(path), "size": list(array.shape[:2]), "found": found.found,
                  "payload": None if found.payload is None else stamp.payload_hex(found.payload),
                  "confidence": found.confidence, "p_value": found.p_value,
                  "bit_errors_corrected": found.bit_errors_corrected,
                  "method": found.method, "too_small": not watermarking.fits(*array.shape[:2])}
        if expected is not None:
            record["matches_model"] = record["payload"] == expected
        results.append(record)
    return results


# ----- dataset audit ------------------------------------------------------------------------------

def audit_cache_dir() -> Path:
    """Where audit hashes are cached ($GENFORGE_CACHE/audit), keyed by fingerprint and file stats."""
    return registry.default_cache_dir().parent / "audit"


def audit(data: str, *, out: str | Path | None = None, manifest: dict[str, str | None] | None = None,
          features: bool = True, **data_options: Any) -> dict:
    """Audit a dataset before training on it: sizes, exact and near duplicates, feature-space
    neighbours, unreadable files, class balance, licence/source/consent and C2PA permissions.

    manifest fields (licence, source, consent) given are first recorded in the data folder's
    genforge-dataset.json. Problems are reported with warnings.warn; with out, the record is also
    written there as JSON. Example: genforge.api.audit("./my-images", resolution=32)
    """
    data_config = resolve_config(data, None, **data_options).data
    # Unlike training, the audit reports a folder with many unreadable files rather than refusing it.
    dataset = MODALITIES[data_config.kind].open(replace(data_config, max_bad_fraction=1.0))
    if manifest and any(v is not None for v in manifest.values()):
        auditing.write_manifest(data, **manifest)
    record = _audit_record(dataset, data_config, features=features)
    for message in record["warnings"]:
        warnings.warn(message)
    if out is not None:
        io.write_json(Path(out), record)
    return record


def open_training_data(data_config) -> tuple[Dataset, dict]:
    """The dataset training sees, and its audit: files whose C2PA manifest forbids AI training
    (and their copies) are left out, and with data.dedup every duplicate of a kept item too."""
    raw = MODALITIES[data_config.kind].open(data_config)
    record = _audit_record(raw, data_config, features=False)
    unchecked = (record["c2pa"] or {}).get("unchecked")
    if unchecked:
        raise DataError(f"{len(unchecked)} file(s) in {data_config.source} carry C2PA manifests that "
                        f"cannot be checked for permission to train (first: {unchecked[0]['path']}: "
                        f"{unchecked[0]['reason']})")
    drops = auditing.training_drops(record, data_config.dedup)
    dataset = raw
    if drops:
        if len(drops) == len(raw):
            raise DataError(f"no items of {data_config.source} are left to train on: all "
                            f"{len(raw)} are left out (C2PA permissions or duplicates; see "
                            "'genforge audit')")
        keep = torch.ones(len(raw), dtype=torch.bool)
        keep[drops] = False
        dataset = Dataset(kind=raw.kind, items=raw.items[keep], class_names=raw.class_names,
                          labels=None if raw.labels is None else raw.labels[keep],
                          source=raw.source, report=raw.report, vocabulary=raw.vocabulary)
    record["training"] = {"items": len(dataset), "left_out": len(drops), "dedup": data_config.dedup,
                          "fingerprint": dataset.fingerprint}
    return dataset, record


def _audit_record(dataset: Dataset, data_config, *, features: bool) -> dict:
    """The audit of an opened dataset; its costly part is cached (a resumed run reuses it)."""
    started = time.perf_counter()
    source = data_config.source
    files = auditing.list_files(source) if dataset.kind == "image" else None  # one file, many crops
    names = auditing.item_names(dataset, source, files)
    cache = audit_cache_dir() / f"{auditing.cache_key(dataset, files)[:32]}.json"
    heavy = auditing.load_cached(cache)
    cached = heavy is not None
    if heavy is None:
        heavy = auditing.heavy_part(dataset, source, files, names)
        if not (heavy["c2pa"] or {}).get("unchecked"):  # checked once c2pa-python is there
            try:
                io.write_json(cache, heavy)
            except OSError as err:  # a cache that cannot be written costs time, not correctness
                warnings.warn(f"audit cache {cache.parent} is not writable ({err})")
    skipped = {"status": "skipped", "reason": "not run during training, where it would embed "
               "every item; 'genforge audit DATA' runs it"}
    record = auditing.report(dataset, source, heavy, names, manifest=auditing.read_manifest(source),
                             features=skipped, max_bad_fraction=data_config.max_bad_fraction,
                             dedup=data_config.dedup)
    if features:
        record["features"] = _feature_neighbours(dataset, names, record["excluded"])
    record["seconds"] = {**record["seconds"], "cached": cached,
                         "total": round(time.perf_counter() - started, 3)}
    return record


def _feature_neighbours(dataset: Dataset, names: list[str] | None, excluded: list[int]) -> dict:
    """Pairs that the domain encoder trained on this data (if cached) places almost together."""
    from .metrics.encoder import load_encoder
    # 'features train' trains on what training sees: without the files that forbid it.
    fingerprints = [dataset.fingerprint]
    if excluded:
        keep = torch.ones(len(dataset), dtype=torch.bool)
        keep[excluded] = False
        fingerprints.append(replace(dataset, items=dataset.items[keep], labels=None if dataset.labels
                                    is None else dataset.labels[keep]).fingerprint)
    path = next((p for p in (encoder_cache_dir() / f"{f[:16]}.safetensors" for f in fingerprints)
                 if p.exists()), None)
    if path is None:
        return {"status": "skipped", "reason": "no domain encoder for this data in the cache; "
                f"train one with 'genforge features train {dataset.source}' (a few minutes)"}
    started = time.perf_counter()
    extractor = load_encoder(path)
    pairs, cosines, angle = auditing.feature_neighbours(extractor.features(dataset.items).numpy())
    name = (lambda i: names[i]) if names else int
    return {"status": "done", "extractor": str(path), "name": extractor.name,
            "median_nearest_angle": round(angle, 5), "ratio": round(auditing.FEATURE_RATIO, 4),
            "pairs": len(pairs),
            "listed": [[name(a), name(b), round(float(c), 5)] for (a, b), c in
                       list(zip(pairs.tolist(), cosines))[:auditing.LISTED_GROUPS]],
            "seconds": round(time.perf_counter() - started, 3)}


# ----- evaluation ---------------------------------------------------------------------------------

def encoder_cache_dir() -> Path:
    """Where 'genforge features train' keeps encoders by default ($GENFORGE_CACHE/encoders)."""
    return registry.default_cache_dir().parent / "encoders"


def train_features(data: str, out: str | Path | None = None, *, name: str | None = None,
                   steps: int | None = None, minutes: float | None = None, seed: int = 0,
                   device: str = "auto", progress: bool = False, **data_options: Any) -> dict:
    """Train the domain encoder behind FD-<name> on a dataset of images (a classifier where it
    has labels, self-supervised where not) or SATB music (self-supervised, with musical views);
    saved to out or the encoder cache, found there by evaluate()."""
    from .metrics.encoder import train_encoder
    data_config = resolve_config(data, None, **data_options).data
    dataset = open_training_data(data_config)[0]
    out = Path(out) if out else encoder_cache_dir() / f"{dataset.fingerprint[:16]}.safetensors"
    kwargs = {k: v for k, v in dict(steps=steps, minutes=minutes).items() if v is not None}
    with tqdm(total=steps, disable=not progress, desc="encoder", unit="step") as bar:
        def on_step(info: dict) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{info['loss']:.3f}")
        path = train_encoder(dataset, out, name=name, seed=seed, progress=on_step,
                             device=str(resolve_device(device)), **kwargs)
    return {"encoder": str(path), **io.load_tensors(path)[1]}


def find_extractor(name: str | None, training_fingerprint: str | None, *,
                   inception_weights: str | None = None, device: str | torch.device = "cpu",
                   fallback: str | None = None):
    """The named extractor, or the cached encoder trained on the data with this fingerprint,
    or else `fallback` (a kind's own extractor, e.g. music's "symbolic") where there is one."""
    if name is None:
        cached = encoder_cache_dir() / f"{(training_fingerprint or '')[:16]}.safetensors"
        if training_fingerprint and cached.exists():
            name = str(cached)
        elif fallback is not None:
            name = fallback
        else:
            raise ConfigError("no feature extractor for this data yet: train one with 'genforge "
                              "features train DATA' (a few minutes; FD-<name> numbers), or pass "
                              "--extractor inception-v3 --inception-weights FILE (FID)")
    return load_extractor(name, device, weights=inception_weights)


def _open_generated(model: Path, n: int, kind: str, device: str):
    """(sample_fn, info) for an exported model folder or a folder of generated files."""
    if (model / "config.json").exists() and (model / "model.safetensors").exists():
        loaded = load(model, device=device)
        return loaded, loaded.manifest["dataset"]["fingerprint"]
    data = MODALITIES[kind].open(resolve_config(str(model), None, labels="none").data)
    if len(data) < n:
        raise ConfigError(f"{model} holds {len(data)} items, fewer than the {n} asked for: "
                          f"pass -n {len(data)} or put more files there")
    return data, None


def evaluate(model: str | Path, data: str, *, n: int | None = None, extractor: str | None = None,
             metrics: tuple[str, ...] | None = None, seed: int = 0,
             sampler: str | None = None, steps: int | None = None, guidance: float | None = None,
             truncation: float | None = None, temperature: float | None = None,
             rules: bool | None = None, fd_dim: int | None = None, fd_resamples: int = 10,
             reference_limit: int = 50_000,
             train_data: str | None = None, inception_weights: str | None = None,
             out: str | Path | None = None, device: str = "auto",
             data_options: dict[str, Any] | None = None) -> dict:
    """Judge a model (or a folder of generated files) against a dataset; write evaluation.json,
    report.html and a sample grid to out, append the records to metrics.jsonl.

    n, metrics and the extractor default to the content kind's (images: 10,000 samples, FD, KID,
    precision/recall, density/coverage, memorisation; music: 1,000 samples, the musical metrics,
    and FD, KID, PRDC too where 'genforge features train' cached an encoder for the model's
    training data or one is given); data_options are data settings for the reference
    (music: split, bars, transpose; by default the held-out test split in the model's length).

    Example: genforge.evaluate("runs/demo/model", "fashion-mnist-test", n=2000)
    """
    from .metrics.report import write_report
    model = Path(model)
    if not model.is_dir():
        raise ConfigError(f"{model} is not a folder: give an exported model folder or a folder "
                          "of generated files")
    kind = guess_kind(str(model))
    if (model / "config.json").exists():
        kind = io.read_json(model / "config.json", "model config")["modality"]
    n = n or MODALITIES[kind].evaluation_samples
    source, training_fingerprint = _open_generated(model, n, kind, device)
    if isinstance(source, GenerativeModel):
        kind = source.spec.modality
        labels = source.class_labels(n, None)
        options = sampling_options(source.family, sampler=sampler, steps=steps, guidance=guidance,
                                   truncation=truncation, temperature=temperature,
                                   rules=rules or None)
        sample_fn = lambda count: source.generate(count, seed=seed, batch_size=256, **options)
        log, out = model / "metrics.jsonl", Path(out) if out else model.parent / "evaluation"
        sampling = {"family": source.family.name,
                    **default_sampling(source.family, source.spec), **options,
                    "seed": seed,
                    "classes": "cycled" if labels is not None else "none",
                    "model_sha256": source.manifest.get("weights_sha256")}
    else:
        sample_fn = lambda count: source.items[:count]
        out = Path(out) if out else model.parent / f"{model.name}-evaluation"
        log, sampling = out / "metrics.jsonl", {"files": str(model)}
    modality = MODALITIES[kind]
    defaults = (modality.reference_options(source) if hasattr(modality, "reference_options")
                and isinstance(source, GenerativeModel) else {})
    reference = modality.open(resolve_config(data, None, **{**defaults, **(data_options or {})}).data)
    modality = modality.bind(reference.vocabulary)
    training = _training_data(source, train_data, reference, modality)
    feature_net = find_extractor(extractor, training_fingerprint or training.fingerprint,
                                 inception_weights=inception_weights, device=resolve_device(device),
                                 fallback=modality.default_extractor)
    if (metrics is None and modality.default_extractor is not None
            and getattr(feature_net, "metadata", {}).get("format") == "genforge-encoder"):
        # a kind with its own extractor (music) judged by a domain encoder: its metrics plus the
        # encoder's distances, where there are more samples than features (FD needs that)
        metrics = tuple(modality.default_metrics)
        if min(n, len(reference), reference_limit) > (fd_dim or feature_net.dim):
            metrics += ("fd", "kid", "prdc")
        else:
            warnings.warn(f"{min(n, len(reference))} samples are too few for FD-{feature_net.name}"
                          f" ({feature_net.dim} features): reporting the {kind} metrics only")
    metrics = tuple(metrics or modality.default_metrics)
    protocol = registry.Protocol(generated=n, reference_limit=reference_limit, seed=seed,
                                 fd_dim=fd_dim, fd_resamples=fd_resamples, sampler=sampling)
    result = registry.evaluate(sample_fn, reference, feature_net, metrics=metrics,
                               protocol=protocol, training=training, log=log,
                               cache_dir=registry.default_cache_dir(),
                               device=resolve_device(device))
    out.mkdir(parents=True, exist_ok=True)
    records = [r.to_dict() for r in result.records]
    io.write_json(out / "evaluation.json", registry.json_safe({"model": str(model), "data": data,
                                                             "records": records}))
    grid = modality.preview(result.generated[:64])
    io.write_with(out / "samples.png", lambda tmp: grid.save(tmp, format="PNG"))
    report = write_report(out / "report.html", result, modality=modality,
                          history=registry.read_records(log), title=f"{model} against {data}")
    if isinstance(source, GenerativeModel):  # the card shows the newest figures
        write_model_card(model)
    return {"records": records, "report": str(report), "log": str(log), "out": str(out)}


def _training_data(source, train_data: str | None, reference, modality):
    """What memorisation compares with: --train-data, else the data the model was trained on
    (rebuilt from its config when it still opens to the same fingerprint), else the reference."""
    if train_data:
        return modality.open(resolve_config(train_data, None).data)
    if isinstance(source, GenerativeModel):
        if source.manifest["dataset"]["fingerprint"] == reference.fingerprint:
            return reference
        data = source.own_training_data()
        if data is not None:
            return data
        warnings.warn(f"the model's training data ({source.manifest['dataset']['source']}) is not "
                      "at hand: memorisation is measured against the reference data; pass "
                      "--train-data to measure it against the training set")
    return reference


def _in_training_evaluator(run: Path, config: RunConfig, dataset, modality):
    """The hook the loop calls every eval_every steps: the same registry code as evaluate(),
    on the EMA weights, logged to RUN/model/metrics.jsonl; a better score exports RUN/best."""
    t = config.train
    if not t.eval_every:
        return None
    extractor = find_extractor(t.eval_extractor, dataset.fingerprint,
                               device=resolve_device(t.device))
    family = FAMILIES[config.family]
    best = _best(run)

    def on_evaluate(module, spec: ModelSpec, progress) -> None:
        nonlocal best
        protocol = registry.Protocol(name="genforge-in-training-v1", generated=t.eval_samples,
                                     reference_limit=10_000, fd_resamples=0, kid_subsets=10,
                                     sampler={"family": config.family,
                                              **default_sampling(family, spec), "seed": 0})
        labels = torch.arange(t.eval_samples) % spec.num_classes if spec.num_classes else None
        sample_fn = lambda n: generate_items(family, module, spec, config, n, seed=0,
                                             labels=labels, batch_size=256,
                                             device=next(module.parameters()).device)
        result = registry.evaluate(sample_fn, dataset, extractor, metrics=(t.eval_metric,),
                                   protocol=protocol, step=progress.step,
                                   log=run / "model" / "metrics.jsonl",
                                   cache_dir=registry.default_cache_dir(),
                                   device=next(module.parameters()).device)
        value = result.value(t.eval_metric)
        if best is None or value < best["value"]:
            best = {"metric": result.records[0].label, "value": value, "step": progress.step}
            export_model(run / "best", module, spec, config, dataset=_dataset_info(dataset),
                         training={"steps": progress.step, "images_seen": progress.images_seen,
                                   "seconds": round(progress.elapsed_s, 1), "best": best})

    return on_evaluate
