"""Model cards: README.md in the Hugging Face model-card format, filled from the model folder.

The card is a pure function of what the folder holds (config.json, manifest.json, metrics.jsonl
and, when present, the training run's audit.json and the latest evaluation report), so it is
rewritten whenever one of them changes: at export and after each evaluation. What only a person
can say (intended use, who may be affected) is left as marked prompts, never invented.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import io
from ..audit import short_line
from . import stamp, watermark

CARD_NAME = "README.md"
HUMAN = "<!-- to be written by a person: "  # prompts a person must answer; tools can grep for it

# Licences genforge knows for the named datasets it reads.
DATASET_LICENCES = {"fashion-mnist": "mit", "fashion-mnist-test": "mit",
                    "fashion-mnist-sample": "mit"}


def public_source(source: str) -> str:
    """A data source as published files name it: a dataset's name as it is, a folder or file by
    its own name only, never the folders above it (they name the user and their layout)."""
    text = str(source)
    if "/" in text or "\\" in text or text.startswith("~"):
        return Path(text.replace("\\", "/")).name or text
    return text


def _latest_records(folder: Path) -> list[dict]:
    """The newest record of each metric label in metrics.jsonl (in-training ones excluded)."""
    path = folder / "metrics.jsonl"
    latest: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("step") is None:
                latest[record["label"]] = record
    return list(latest.values())


def _yaml_value(value: Any) -> str:
    return json.dumps(value)  # JSON scalars and flow lists are valid YAML


def _front_matter(config: dict, manifest: dict, records: list[dict], name: str) -> str:
    run = config["run_config"]
    source = public_source(manifest["dataset"]["source"])
    tags = ["genforge", run["family"], config["modality"],
            "class-conditional" if config.get("class_names") else "unconditional",
            f"{config['modality']}-generation"]
    lines = ["---", f"license: {DATASET_LICENCES.get(source, 'other')}",
             "library_name: genforge", "tags:"] + [f"- {t}" for t in tags]
    if source in DATASET_LICENCES:
        lines += ["datasets:", "- zalando-datasets/fashion_mnist"]
    if records:
        task = "class-conditional" if config.get("class_names") else "unconditional"
        reference = public_source(records[0]["protocol"].get("reference_source", source))
        lines += ["model-index:", f"- name: {_yaml_value(name)}", "  results:",
                  "  - task:", f"      type: {task}-{config['modality']}-generation",
                  "    dataset:", f"      name: {_yaml_value(reference)}",
                  f"      type: {_yaml_value(reference)}", "    metrics:"]
        for r in (r for r in records if r["value"] is not None):  # undefined values stay out
            described = f"{r['label']} ({r['extractor']}, {r['generated']} samples)"
            lines += [f"    - type: {_yaml_value(r['label'])}", f"      value: {r['value']:.6g}",
                      f"      name: {_yaml_value(described)}"]
    lines.append("---")
    return "\n".join(lines)


def _tuning_lines(manifest: dict, run: dict) -> list[str]:
    """What a consistency-tuned model was tuned from, and for how long (genforge distill)."""
    source = manifest.get("tuned_from")
    if not source:
        return []
    taught, tuned = source.get("training", {}), manifest["training"]
    share = (f" ({tuned['seconds'] / taught['seconds']:.0%} of the teacher's training time)"
             if taught.get("seconds") and tuned.get("seconds") is not None else "")
    c = run.get("consistency", {})
    return [f"- tuned from `{source.get('model')}` (weights sha256 "
            f"`{str(source.get('weights_sha256'))[:16]}`, trained {taught.get('steps', '?')} "
            f"steps in {taught.get('seconds', '?')} s) by {source.get('method')}: "
            f"{tuned['steps']:,} steps in {tuned.get('seconds', '?')} s{share}; ECT stages of "
            f"{c.get('stage_steps')} steps, q {c.get('ratio_q')}; samples in 1 or 2 network "
            "evaluations (`--steps 1|2`, default 2)"]


def _health_line(health: dict | None) -> str:
    """How training went: rollbacks after divergence, an unstable end, recoveries."""
    if health is None:
        return "- health: not recorded (exported before genforge recorded it)"
    notes = "; ".join(health["notes"]) or "no rollbacks, no divergence"
    flag = "**unstable**: " if health["status"] != "ok" else "ok: "
    return f"- health: {flag}{notes}"


def model_card(folder: str | Path) -> str:
    """The model card text for an exported model folder."""
    folder = Path(folder)
    config = io.read_json(folder / "config.json", "model config")
    manifest = io.read_json(folder / "manifest.json", "manifest")
    run, data, training = config["run_config"], manifest["dataset"], manifest["training"]
    records = _latest_records(folder)
    audit_path = folder.parent / "audit.json"
    audit = io.read_json(audit_path, "audit") if audit_path.exists() else None
    family = run["family"]
    network = run["gan"] if family == "gan" else run["network"]
    classes = ", ".join(config.get("class_names") or []) or "none (unconditional)"

    name = folder.parent.name or folder.name
    parts = [_front_matter(config, manifest, records, name), "",
             f"# {name}: a genforge {family} model", "",
             f"A {family} model that generates {config['modality']} items of shape "
             f"{config['item_shape']}, trained with genforge {manifest['genforge_version']} "
             f"(torch {manifest['torch_version']}). Weights: `model.safetensors` (EMA), "
             f"sha256 `{manifest['weights_sha256']}`; {manifest['parameters']:,} parameters.", "",
             "## Training data", "",
             f"- source: `{public_source(data['source'])}`, {data['items']:,} items, fingerprint "
             f"`{data['fingerprint'][:16]}`", f"- classes: {classes}",
             f"- licence: {DATASET_LICENCES.get(data['source'], HUMAN + 'the licence of the training data, and whether its owners consented -->')}"]
    if audit is not None:
        parts.append(f"- audit (`audit.json` of the run): {short_line(audit)}")
    else:
        parts.append("- audit: none recorded with this model (`genforge audit DATA`)")
    parts += ["", "## Training", "",
              f"- {training['steps']:,} steps, {training['images_seen']:,} images seen, "
              f"{training.get('seconds', '?')} s; seed {manifest['seed']}; config hash "
              f"`{manifest['config_hash']}`",
              f"- network: " + ", ".join(f"{k} {v}" for k, v in network.items()),
              f"- optimisation: batch {run['train']['batch_size']}, lr {run['train']['lr']}, "
              f"EMA {run['train']['ema_decay']}, augmentation {run['augment']['augment']}",
              _health_line(training.get("health")), *_tuning_lines(manifest, run), "",
              "## Evaluation", ""]
    if records:
        parts += ["| metric | value | 95% interval | extractor | samples vs reference | protocol |",
                  "|---|---|---|---|---|---|"]
        for r in records:
            ci = "" if r["ci_low"] is None else f"[{r['ci_low']:.4g}, {r['ci_high']:.4g}]"
            against = ("training items" if r["extractor"] == "pixels"  # memorisation's reference
                       else public_source(r["protocol"].get("reference_source", "reference")))
            value = "undefined" if r["value"] is None else f"{r['value']:.5g}"
            parts.append(f"| {r['label']} | {value} | {ci} | {r['extractor']} | "
                         f"{r['generated']:,} vs {r['reference']:,} {against} | "
                         f"{r['protocol']['name']} |")
        share = next((r for r in records if r["metric"] == "memorised_share"), None)
        parts += ["", f"Memorisation: {share['value']:.4f} of samples are likely copies of a "
                      f"training item (nearest/second-nearest ratio < 1/3, pixel space)."
                  if share else "Memorisation: not measured yet (`genforge evaluate MODEL --data DATA`)."]
        report = folder.parent / "evaluation" / "report.html"
        if report.exists():
            parts.append(f"The closest generated/training pairs are in the evaluation report's "
                         f"gallery: `{report.relative_to(folder.parent)}`.")
    else:
        parts.append("Not evaluated yet: `genforge evaluate MODEL --data DATA` adds FD, KID, "
                     "precision/recall and memorisation here.")
    parts += ["", "## Provenance of generated files", "",
              "Every file `genforge generate` writes carries its generation record (model hash, "
              "seed, sampler and parameters) in its metadata and in `generations.jsonl`, so it "
              "can be regenerated and traced. `--reject-copies` drops samples that copy a "
              "training item.", "", watermark_line(config, manifest), "",
              "C2PA: every file is signed by default with a C2PA manifest (`c2pa.created`, "
              "digital source type trainedAlgorithmicMedia, this model's hash, the training "
              "data's fingerprint, the generation parameters and the watermark as a soft "
              "binding); formats C2PA does not cover (MIDI, level text) are signed as a zip "
              "pack. `genforge verify FILE` checks it; `genforge keys init` makes a local "
              "development certificate, `--cert/--key` use your own. Re-encoding or "
              "screenshots strip the manifest, which is why the watermark exists.", "",
              "## Intended use and limitations", "",
              f"{HUMAN}what this model is for, and what it must not be used for -->",
              f"{HUMAN}who could be affected by its outputs, and how -->",
              "- It reproduces the statistics of its training data, including its biases and "
              "gaps; with few training items it may copy them (see Memorisation).",
              "- Metric values hold only for the protocol, extractor and sample count given with "
              "them; FD values from different extractors are not comparable.", ""]
    return "\n".join(parts)


def watermark_line(config: dict, manifest: dict) -> str:
    """What the card says about the invisible watermark this model's images carry (or why not)."""
    if config["modality"] != "image":
        return (f"Watermark: {config['modality']} items carry no pixel watermark; their "
                "provenance rests on the signed pack and the generation log.")
    height, width = config["item_shape"][-2:]
    if not watermark.fits(height, width):
        low_h, low_w = watermark.min_size()
        payload = stamp.payload_hex(stamp.payload_for(manifest["weights_sha256"]))
        return (f"Watermark: none in the native files. This model makes {height}x{width} images, "
                f"below the invisible watermark's minimum of {low_h}x{low_w}; their provenance "
                "rests on the C2PA manifest and the generation log. `genforge generate MODEL "
                "--display-size 512` writes beside each an upscaled display copy for sharing "
                f"that carries the watermark (payload `{payload}`) and its own signed manifest "
                "naming the native file as its ingredient.")
    payload = stamp.payload_hex(stamp.payload_for(manifest["weights_sha256"]))
    return (f"Watermark: every generated image carries genforge's invisible watermark "
            f"({watermark.METHOD} v{watermark.VERSION}, public key) with payload `{payload}`, the "
            "first 32 bits of the weights' sha256; `genforge detect IMAGE --model MODEL` reads it "
            "back, and an opt-out (`--no-watermark`) is recorded in the generation log. It "
            "survives JPEG, resizing, small crops and brightness changes, but proves presence, "
            "not absence: whoever knows the method can remove it, and regeneration or heavy "
            "editing defeats it.")


def write_model_card(folder: str | Path) -> Path:
    """Write (or rewrite) README.md in an exported model folder, atomically."""
    return io.write_text(Path(folder) / CARD_NAME, model_card(folder))
