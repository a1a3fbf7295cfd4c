"""ONNX export: an exported model folder as one network evaluation in ONNX, for genforge.runtime.

Each family exports the one evaluation its sampler repeats, with every changing value an input
(never a constant frozen at trace time) and a dynamic batch:
- diffusion: the EDM denoiser D(x, sigma, class) -> denoised x (the sampler loops in the runtime);
- gan: the generator G(z, class, truncation, noise) -> item (StyleGAN2's per-layer noise maps are
  one flat input, so the runtime draws them from each sample's own stream as PyTorch does);
- discrete: one masked prediction (tokens, mask rate, class) -> logits over the symbols.
StyleGAN2 needs no rewrite: its modulated convolutions already modulate the activations (the
weights stay constant), see models.stylegan2.ModulatedConv.

The folder holds model.onnx, config.json (the model's own, plus an "onnx" section saying what
the runtime needs: inputs, sampling defaults, how items decode and are written), manifest.json
(the model's, plus the ONNX file's sha256) and the model card.
"""
from __future__ import annotations

import math
import shutil
import tempfile
import logging
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import io
from .errors import ConfigError, GenforgeError
from .export import _sha256, load_module, read_model_folder
from .families import FAMILIES, ModelSpec, sampling_options
from .modalities import modality_for
from .provenance.model_card import write_model_card
from .version import __version__

ONNX_FORMAT = "genforge-onnx"
OPSET = 18
EXAMPLE_BATCH = 2  # traced at 2 so that no size-1 specialisation creeps into the dynamic batch


class DiffusionGraph(nn.Module):
    """D(x [B,C,H,W], sigma [B], class_labels [B] (-1: none)) -> denoised [B,C,H,W]."""

    def __init__(self, denoiser: nn.Module, classes: bool):
        super().__init__()
        self.denoiser, self.classes = denoiser, classes

    def forward(self, x, sigma, class_labels=None):
        return self.denoiser(x, sigma, class_labels if self.classes else None)


class GeneratorGraph(nn.Module):
    """G(z [B,L], class_labels [B], truncation [B], noise [B, N]) -> item; noise is the
    generator's per-layer noise maps, flattened and concatenated in the order it draws them."""

    def __init__(self, generator: nn.Module, classes: bool, noise_shapes: list[tuple[int, ...]]):
        super().__init__()
        self.generator, self.classes, self.noise_shapes = generator, classes, noise_shapes

    def forward(self, z, class_labels, truncation, noise=None):
        maps = iter([] if noise is None else noise.split(
            [math.prod(s) for s in self.noise_shapes], dim=1))
        return self.generator(z, class_labels if self.classes else None,
                              truncation=truncation[:, None],
                              noise=lambda shape: next(maps).reshape(shape))


class MaskedGraph(nn.Module):
    """logits [B,K,H,W] = f(tokens [B,H,W] int64 (MASK where hidden), rate [B], class_labels [B])."""

    def __init__(self, module: nn.Module, classes: bool):
        super().__init__()
        self.module, self.classes = module, classes

    def forward(self, tokens, rate, class_labels=None):
        return self.module(tokens, rate, class_labels if self.classes else None)


def _noise_shapes(generator: nn.Module, spec: ModelSpec) -> list[tuple[int, ...]]:
    """The per-sample shapes of the noise maps a generator draws, in order (none for DCGAN/MLP)."""
    shapes: list[tuple[int, ...]] = []

    def record(shape):
        shapes.append(tuple(shape[1:]))
        return torch.zeros(shape)

    labels = torch.zeros(1, dtype=torch.long) if spec.num_classes else None
    with torch.no_grad():
        generator(torch.zeros(1, generator.latent_dim), labels, noise=record)
    return shapes


def graph_for(family: str, module: nn.Module, spec: ModelSpec) -> tuple[nn.Module, dict, dict]:
    """(wrapper, example inputs by name, what the runtime reads about the graph)."""
    b, classes = EXAMPLE_BATCH, spec.num_classes > 0
    denoiser = family in ("diffusion", "consistency")  # a tuned model is an EDM denoiser too
    labels = {"class_labels": torch.tensor([0, -1][:b] if denoiser else [0] * b)
              } if classes else {}
    if denoiser:
        x = torch.randn(b, *spec.model_shape)
        return (DiffusionGraph(module, classes),
                {"x": x, "sigma": torch.tensor([2.0, 0.5]), **labels},
                {"output": "denoised"})
    if family == "gan":
        shapes = _noise_shapes(module, spec)
        noise = {"noise": torch.randn(b, sum(math.prod(s) for s in shapes))} if shapes else {}
        inputs = {"z": torch.randn(b, module.latent_dim),
                  "class_labels": labels.get("class_labels", torch.zeros(b, dtype=torch.long)),
                  "truncation": torch.full((b,), 0.7), **noise}
        return (GeneratorGraph(module, classes, shapes), inputs,
                {"output": "item", "latent_dim": module.latent_dim,
                 "noise_shapes": [list(s) for s in shapes]})
    if family == "discrete":
        h, w = spec.item_shape[-2:]
        tokens = torch.randint(0, module.classes + 1, (b, h, w))
        return (MaskedGraph(module, classes),
                {"tokens": tokens, "rate": torch.tensor([0.3, 0.9]), **labels},
                {"output": "logits", "classes": module.classes, "mask_token": module.mask_token,
                 "unique_tokens": list(module.modality.unique_tokens()), "grid": [h, w]})
    raise ConfigError(f"no ONNX export for the {family!r} family")


def export_graph(wrapper: nn.Module, inputs: dict[str, torch.Tensor], output: str,
                 path: Path) -> None:
    """torch.onnx.export (the dynamo exporter) with a dynamic batch on every input, then
    onnx.checker; GenforgeError in one line when either fails."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's dynamo exporter writes through it)
    except ImportError as err:
        raise GenforgeError(f"ONNX export needs {err.name}: pip install 'genforge[runtime]'") from None
    batch = torch.export.Dim("batch", min=1, max=4096)
    chatter = logging.getLogger("torch.onnx")  # "torchvision is not installed. Skipping ..."
    level = chatter.level
    chatter.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # the exporter's own deprecation chatter, not the user's
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper.eval(), tuple(inputs.values()), input_names=list(inputs),
                output_names=[output], dynamic_shapes={name: {0: batch} for name in inputs},
                opset_version=OPSET, dynamo=True, external_data=False, verbose=False)
        program.save(str(path))
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as err:  # the exporter raises many kinds; the user gets one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GenforgeError(f"ONNX export failed ({type(err).__name__}: {first[:300]})") from err
    finally:
        chatter.setLevel(level)


def decoding(spec: ModelSpec) -> dict[str, Any]:
    """How the runtime turns model outputs into items and files, for this content kind."""
    modality = modality_for(spec)
    if spec.modality == "image":
        return {"kind": "image", "channels": spec.item_shape[0]}
    if spec.modality == "level":
        from .levels.formats import SOKOBAN
        from .modalities.level import TILE_PIXELS, tile_colours
        legend = modality.legend
        return {"kind": "level", "chars": list(legend.chars),
                "colours": tile_colours(legend).tolist(), "tile_pixels": TILE_PIXELS,
                "format": "xsb" if legend.chars == SOKOBAN.chars else "txt"}
    if spec.modality == "music":
        from .music import representation as rep
        return {"kind": "music", "encoding": "satb" if rep.is_satb(spec.item_shape) else "roll",
                "pitch_low": rep.PITCH_LOW, "pitch_bins": rep.PITCH_BINS, "onset": rep.ONSET,
                "roll_low": rep.ROLL_LOW, "steps_per_quarter": rep.STEPS_PER_QUARTER}
    raise ConfigError(f"no ONNX decoding for {spec.modality} items")


def _is_onnx_export(folder: Path) -> bool:
    try:
        return io.read_json(folder / "config.json", "model config").get("onnx", {}).get(
            "format") == ONNX_FORMAT
    except (GenforgeError, AttributeError):
        return False


def onnx_card(section: dict, manifest: dict, path: Path) -> str:
    """The model card's section on this export (the card above it describes the trained model,
    whose model.safetensors stays in the model folder)."""
    return (f"\n## ONNX export\n\nThis folder holds the model as ONNX (`{section['file']}`, opset "
            f"{section['opset']}, sha256 `{_sha256(path)}`), exported from the weights with "
            f"sha256 `{manifest['weights_sha256']}` (model.safetensors, not copied here). One "
            f"network evaluation; inputs {', '.join(f'`{i}`' for i in section['inputs'])}, "
            f"output `{section['output']}`. Generate with `python -m genforge.runtime FOLDER` "
            "(numpy, onnxruntime and Pillow; no PyTorch). Files it writes carry no watermark and "
            "no C2PA signature; their records name the model, this file's hash and the runtime.\n")


def export_onnx(model: str | Path, out: str | Path | None = None) -> Path:
    """Export the model folder `model` as ONNX into `out` (default: MODEL-onnx beside it),
    atomically; returns the folder."""
    model = Path(model)
    model_config, manifest, run_config = read_model_folder(model)
    module, spec, config, _ = load_module(model, "cpu")
    module = module.to(memory_format=torch.contiguous_format)
    family = config.family
    out = Path(out) if out is not None else model.parent / f"{model.name}-onnx"
    if out.resolve() == model.resolve():
        raise ConfigError(f"--out {out}: the ONNX export needs its own folder, not the model's")
    if out.exists() and any(out.iterdir()) and not _is_onnx_export(out):
        raise ConfigError(f"--out {out}: the folder exists and holds something other than an "
                          "ONNX export; choose a new folder (an export replaces its folder whole)")
    wrapper, inputs, graph = graph_for(family, module, spec)
    options = asdict(sampling_options(FAMILIES[family], spec, {}))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    io.user_permissions(staging, folder=True)
    try:
        export_graph(wrapper, inputs, graph["output"], staging / "model.onnx")
        d = config.diffusion
        onnx_section = {
            "format": ONNX_FORMAT, "format_version": 1, "file": "model.onnx", "opset": OPSET,
            "inputs": list(inputs), **graph, "sampling": options, "decode": decoding(spec),
            **({"sigma_min": d.sigma_min, "sigma_max": d.sigma_max}
               if family in ("diffusion", "consistency") else {})}
        io.write_json(staging / "config.json", {**model_config, "onnx": onnx_section})
        io.write_json(staging / "manifest.json", {
            **manifest, "onnx_sha256": _sha256(staging / "model.onnx"),
            "onnx_exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "onnx_exported_by": {"genforge_version": __version__,
                                 "torch_version": torch.__version__}})
        if (model / "metrics.jsonl").exists():
            shutil.copy2(model / "metrics.jsonl", staging / "metrics.jsonl")
        card = write_model_card(staging)
        io.write_text(card, card.read_text(encoding="utf-8") + onnx_card(onnx_section, manifest,
                                                                        staging / "model.onnx"))
        return io.replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
