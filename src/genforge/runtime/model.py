"""An exported ONNX folder, loaded and ready to generate without PyTorch."""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError, ConfigError
from ..version import __version__
from . import decode
from .masked import sample_tokens
from .noise import NOISE, SeedStreams
from .outputs import write_outputs
from .samplers import (SAMPLERS, classifier_free, conditional, consistency_sigmas,
                       karras_sigmas)

MAX_JSON_BYTES = 16 << 20
CHOICES = {"sampler": (*SAMPLERS, "ancestral", "confidence")}
RANGES = {"steps": (1, 1024), "guidance": (0.0, 100.0), "truncation": (0.0, 2.0),
          "temperature": (1e-9, 5.0), "mid_sigma": (1e-3, 80.0)}


def _read_json(path: Path, what: str) -> dict:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise CheckpointError(f"{path}: {what} larger than {MAX_JSON_BYTES >> 20} MiB")
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: unreadable {what} ({str(err).splitlines()[0]})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: a {what} is a JSON object")
    return value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _interval(value: Any) -> tuple[float, ...]:
    """A guidance interval as an export or a caller gives it ([low, high], "low,high" or empty),
    checked: two finite noise levels with 0 <= low < high."""
    if isinstance(value, str) and value.strip().lower() in ("", "none"):
        return ()
    parts = value.split(",") if isinstance(value, str) else value
    try:
        pair = tuple(float(v) for v in parts if not isinstance(v, str) or v.strip())
    except (TypeError, ValueError):
        pair = (float("nan"),)
    if pair and not (len(pair) == 2 and 0 <= pair[0] < pair[1] < float("inf")):
        raise ConfigError(f"guidance_interval takes two noise levels low,high with 0 <= low < "
                          f"high, or none; got {value!r:.40}")
    return pair


class RuntimeModel:
    """A model exported with `genforge export MODEL --format onnx`, run by onnxruntime."""

    def __init__(self, folder: str | Path, *, threads: int | None = None):
        """threads: onnxruntime's intra-op threads; None measures which is faster here."""
        import onnxruntime as ort
        self.folder = Path(folder)
        if not (self.folder / "config.json").is_file():
            raise CheckpointError(f"{self.folder}: not an ONNX export (no config.json): make one "
                                  "with genforge export MODEL --format onnx")
        self.config = _read_json(self.folder / "config.json", "model config")
        self.manifest = _read_json(self.folder / "manifest.json", "manifest")
        self.graph = self.config.get("onnx")
        if not isinstance(self.graph, dict) or self.graph.get("format") != "genforge-onnx":
            raise CheckpointError(f"{self.folder / 'config.json'}: no 'onnx' section: this is a "
                                  "PyTorch model folder; export it with --format onnx")
        path = self.folder / str(self.graph.get("file", "model.onnx"))
        if not path.is_file() or path.parent != self.folder:
            raise CheckpointError(f"{path}: the ONNX file the config names is missing")
        if _sha256(path) != self.manifest.get("onnx_sha256"):
            raise CheckpointError(f"{path}: its sha256 is not the one manifest.json records "
                                  "(changed or damaged since export)")
        try:
            self.family, self.decoding = self.config["family"], self.graph["decode"]
            self.class_names = [str(c) for c in self.config.get("class_names", [])]
            self.item_shape = tuple(int(s) for s in self.config["item_shape"])
            self.graph["sampling"], self.decoding["kind"]  # noqa: B018 (present, or refused)
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{self.folder / 'config.json'}: malformed ONNX export config "
                                  f"({type(err).__name__}: {err})") from None
        if self.family not in ("diffusion", "consistency", "gan", "discrete"):
            raise CheckpointError(f"{self.folder / 'config.json'}: unknown family "
                                  f"{self.family!r:.40}")
        self.path, self.threads = path, threads
        self.session = self._session(threads) if threads else None
        self.inputs = {i.name for i in (self.session or self._session(1)).get_inputs()}
        self.runtime = f"onnxruntime {ort.__version__}"

    def _session(self, threads: int):
        """An onnxruntime CPU session with `threads` intra-op threads (0: one per core)."""
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def _pick_session(self, feeds: dict) -> None:
        """threads None: measure, on the first real inputs, one thread against one per core and
        keep the faster. Neither wins everywhere (benchmarks/bench_export.py): one thread won
        at batch 64 on 2 busy cores, where threads wait on each other; more cores help big
        batches on an idle machine."""
        cores = os.cpu_count() or 1
        timed = {}
        for threads in sorted({1, cores}):
            session = self._session(threads)
            session.run(None, feeds)  # warm-up: first runs allocate
            runs = []
            for _ in range(3):  # the best of three: a busy machine makes single times noisy
                start = time.perf_counter()
                session.run(None, feeds)
                runs.append(time.perf_counter() - start)
            timed[threads] = (min(runs), session)
        self.threads = min(timed, key=lambda t: timed[t][0])
        self.session = timed[self.threads][1]

    @property
    def name(self) -> str:
        """What records call the model (its folder's name, or the run's for RUN/model-onnx)."""
        folder = self.folder.resolve()
        return folder.parent.name if folder.name.startswith("model") and folder.parent.name else folder.name

    # -- one network evaluation ----------------------------------------------------------------
    def run(self, **inputs: np.ndarray) -> np.ndarray:
        """The ONNX graph on named inputs (those it does not take are left out)."""
        feeds = {k: v for k, v in inputs.items() if k in self.inputs}
        if self.session is None:
            self._pick_session(feeds)
        return self.session.run(None, feeds)[0]

    def _labels(self, labels: np.ndarray | None, n: int) -> np.ndarray:
        return (np.full(n, -1, dtype=np.int64) if labels is None
                else np.asarray(labels, dtype=np.int64))

    # -- options -------------------------------------------------------------------------------
    def class_labels(self, n: int, class_label: int | str | None,
                     seeds: list[int]) -> np.ndarray | None:
        """As GenerativeModel.class_labels: None cycles seed mod K, -1/'none' unconditional."""
        k = len(self.class_names)
        if k == 0:
            if class_label not in (None, -1, "none"):
                raise ConfigError(f"this model has no classes; class {class_label} cannot be used")
            return None
        if class_label is None:
            return np.asarray(seeds, dtype=np.int64) % k
        if class_label in (-1, "none"):
            return np.full(n, -1, dtype=np.int64)
        if isinstance(class_label, str) and not class_label.lstrip("-").isdigit():
            if class_label not in self.class_names:
                raise ConfigError(f"unknown class {class_label!r} (known: "
                                  f"{', '.join(self.class_names)})")
            return np.full(n, self.class_names.index(class_label), dtype=np.int64)
        if not 0 <= int(class_label) < k:
            raise ConfigError(f"class {class_label} out of range: this model has classes 0..{k - 1}")
        return np.full(n, int(class_label), dtype=np.int64)

    def sampling(self, **given: Any) -> dict[str, Any]:
        """The export's sampling defaults (the family's and the kind's), then the given ones."""
        defaults = dict(self.graph["sampling"])
        given = {k: v for k, v in given.items() if v is not None}
        for name, value in given.items():
            if name not in defaults:
                raise ConfigError(f"{name} does not apply to a {self.family} model (its options: "
                                  f"{', '.join(sorted(defaults)) or 'none'})")
            default = defaults[name]
            if name == "guidance_interval":
                continue  # a pair, checked below with the export's own
            if isinstance(default, bool) != isinstance(value, bool) or (
                    isinstance(default, (int, float)) and not isinstance(value, type(default))
                    and not (isinstance(default, float) and isinstance(value, int))):
                raise ConfigError(f"{name} takes a {type(default).__name__} (like {default!r}), "
                                  f"got {value!r:.40}")
            low, high = RANGES.get(name, (None, None))
            if low is not None and not low <= value <= high:
                raise ConfigError(f"{name} {value} is outside {low}..{high}")
        options = {**defaults, **given}
        if "guidance_interval" in options:
            options["guidance_interval"] = _interval(options["guidance_interval"])
        if options.get("sampler") is not None and options["sampler"] not in CHOICES["sampler"]:
            raise ConfigError(f"unknown sampler {options['sampler']!r}")
        if (options.get("sampler") == "consistency") != (self.family == "consistency"):
            raise ConfigError(f"sampler {options['sampler']} does not apply to a {self.family} "
                              "model (the consistency sampler is for consistency-tuned models)")
        if self.family == "consistency" and options["steps"] not in (1, 2):
            raise ConfigError(f"steps must be 1 or 2 (a consistency-tuned model samples in one "
                              f"or two network evaluations), got {options['steps']}")
        if options.get("rules"):
            raise ConfigError("rules (--rules) need genforge with PyTorch: the content kinds' "
                              "rule checks are not in the runtime")
        return options

    # -- sampling ------------------------------------------------------------------------------
    def sample(self, seeds: list[int], labels: np.ndarray | None, **options: Any) -> np.ndarray:
        """Integer items for these seeds (item i depends only on seeds[i]); options as
        sampling() returns them."""
        noise, n, d = SeedStreams(seeds), len(seeds), self.decoding
        if self.family in ("diffusion", "consistency"):  # one denoiser; the schedule differs
            shape = tuple(self.config.get("model_shape") or self.item_shape)
            sigmas = (consistency_sigmas(options["steps"], self.graph["sigma_max"],
                                         options["mid_sigma"]) if self.family == "consistency"
                      else karras_sigmas(options["steps"], self.graph["sigma_min"],
                                         self.graph["sigma_max"]))
            x = noise(shape) * sigmas[0]
            model = lambda x, sigma, lab: self.run(  # noqa: E731
                x=x, sigma=sigma, class_labels=self._labels(lab, len(x)))
            denoiser = (classifier_free(model, labels, options["guidance"],
                                        options.get("guidance_interval", ()))
                        if labels is not None and options["guidance"] != 1.0
                        else conditional(model, labels))
            x = SAMPLERS[options["sampler"]](denoiser, x, sigmas, noise=noise)
        elif self.family == "gan":
            if labels is not None and (labels < 0).any():
                raise ConfigError("a GAN has no unconditional mode: give a class")
            z = noise((self.graph["latent_dim"],))
            maps = [noise(tuple(s)).reshape(n, -1) for s in self.graph["noise_shapes"]]
            x = self.run(z=z, class_labels=self._labels(labels, n),
                         truncation=np.full(n, options["truncation"], dtype=np.float32),
                         noise=np.concatenate(maps, 1) if maps else np.zeros((n, 0), np.float32))
        else:
            predict = lambda tokens, rate, lab: self.run(  # noqa: E731
                tokens=tokens, rate=rate, class_labels=self._labels(lab, len(tokens)))
            tokens = sample_tokens(predict, tuple(self.graph["grid"]), self.graph["classes"],
                                   self.graph["mask_token"], noise, labels,
                                   sampler=options["sampler"], steps=options["steps"],
                                   temperature=options["temperature"],
                                   unique=tuple(self.graph["unique_tokens"]))
            if d["kind"] == "level":
                return tokens.astype(np.uint8)
            return decode.music_from_tokens(tokens, d)
        if d["kind"] == "image":
            return decode.image_items(x)
        return decode.level_items(x) if d["kind"] == "level" else decode.music_items(x, d)

    def generate(self, n: int = 16, *, seed: int = 0, class_label: int | str | None = None,
                 batch_size: int = 64, out: str | Path | None = None, **sampling: Any) -> np.ndarray:
        """n items (uint8 images [n, C, H, W], SATB codes or rolls, tile grids); item i uses
        seed + i whatever the batch size. With out, writes the files and the records."""
        if n < 1 or batch_size < 1:
            raise ConfigError(f"n and batch size must be at least 1, got {n} and {batch_size}")
        seeds = list(range(seed, seed + n))
        labels = self.class_labels(n, class_label, seeds)
        options = self.sampling(**sampling)
        items = np.concatenate([
            self.sample(seeds[i:i + batch_size],
                        None if labels is None else labels[i:i + batch_size], **options)
            for i in range(0, n, batch_size)])
        if out is not None:
            source = {"model": self.name, "model_sha256": self.manifest.get("weights_sha256"),
                      "onnx_sha256": self.manifest.get("onnx_sha256"), "family": self.family,
                      "genforge_version": __version__, "noise": NOISE,
                      "runtime": f"{self.runtime}, {self.threads} thread(s)"}
            classes = [None if labels is None or labels[i] < 0 else self.class_names[labels[i]]
                       for i in range(n)]
            write_outputs(items, Path(out), seeds, classes, source, options, self.decoding)
        return items


def load(folder: str | Path, *, threads: int | None = None) -> RuntimeModel:
    """Load an ONNX export (genforge export MODEL --format onnx) for generation without PyTorch."""
    return RuntimeModel(folder, threads=threads)
