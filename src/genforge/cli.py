"""The command line: a thin shell that parses, calls genforge.api and formats the result.

Training options are generated from the config dataclasses, so each is declared once.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import MISSING, asdict, fields
from pathlib import Path

from . import api, audit, io
from .config import FAMILIES, PRESETS, SECTIONS, DataConfig
from .errors import GenforgeError
from .families.discrete import SAMPLERS as DISCRETE_SAMPLERS
from .metrics import registry
from .modalities import MODALITIES
from .sampling import SAMPLERS
from .version import __version__


DATA_HELP = ("a folder of images, music (MIDI, MusicXML, Humdrum) or levels (XSB; text grids "
             "with --kind level --legend), or a dataset name "
             f"({', '.join(name for m in MODALITIES.values() for name in m.named_sources)})")


def _add_config_options(parser: argparse.ArgumentParser, sections: dict = SECTIONS,
                        skip: tuple[str, ...] = ("source",)) -> None:
    """One --option per config field (except the data source, which is positional, and skip)."""
    for section, cls in sections.items():
        group = parser.add_argument_group(f"{section} options")
        for f in fields(cls):
            if f.name in skip:
                continue
            flag = "--" + f.name.replace("_", "-")
            default = f.default if f.default is not MISSING else f.default_factory()
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            help_text = f"{f.metadata['help']} (default: {shown})"
            if isinstance(default, bool):
                group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                                   default=argparse.SUPPRESS, help=help_text)
            else:
                choices = f.metadata.get("choices")
                if choices:
                    help_text += f"; one of {', '.join(str(c) for c in choices)}"
                # Values stay strings here; config.py coerces and validates them with clear errors.
                group.add_argument(flag, dest=f.name, default=argparse.SUPPRESS, metavar="VALUE",
                                   help=help_text)


def _add_sampling_options(parser: argparse.ArgumentParser) -> None:
    """Generation options; each family takes its own and refuses the others by name."""
    group = parser.add_argument_group("sampling options (diffusion)")
    group.add_argument("--sampler", default=None, choices=[*SAMPLERS, *DISCRETE_SAMPLERS],
                       help="ODE/SDE solver (default: dpmpp-2m); discrete models: ancestral "
                            "(default) or confidence (four-part music's default)")
    group.add_argument("--steps", type=int, default=None,
                       help="sampler steps (default: 20; discrete models 32, four-part music 64)")
    group.add_argument("--guidance", type=float, default=None,
                       help="classifier-free guidance scale (1: none; 2-4 sharpen class identity)")
    group = parser.add_argument_group("sampling options (GAN)")
    group.add_argument("--truncation", type=float, default=None,
                       help="truncation psi (1: none; 0.5-0.8 trade variety for typical samples)")
    group = parser.add_argument_group("sampling options (discrete)")
    group.add_argument("--temperature", type=float, default=None,
                       help="softmax temperature (default 1, the model's distribution; four-part "
                            "music 1.25; lower is safer and less varied)")
    group.add_argument("--rules", action="store_true", default=None,
                       help="mend what breaks the content kind's rules, each fix drawn from the "
                            "model (four-part music: parallel fifths and octaves; Sokoban: open "
                            "border, boxes != goals, stuck boxes, unsolvable; Lode Runner: gold "
                            "out of reach)")


def _add_signing_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("C2PA signing (default: the local development keys, created on "
                                 "first use)")
    group.add_argument("--no-sign", dest="sign", action="store_false",
                       help="write files without a C2PA manifest (recorded in the log)")
    group.add_argument("--keys", default=None, help="keys folder (default: $GENFORGE_KEYS or "
                       "~/.config/genforge/keys)")
    group.add_argument("--cert", default=None, help="your certificate chain (PEM, signing "
                       "certificate first), instead of the development keys")
    group.add_argument("--key", default=None, help="the private key (PEM) of --cert")
    group.add_argument("--tsa-url", default=None, help="an RFC 3161 time-stamp server, so "
                       "signatures outlive the certificate (default: none, fully offline)")


def _add_inpainting_options(p: argparse.ArgumentParser, what: str, out: str) -> None:
    """What harmonize and complete share: how many, seeds, steps, device, output and signing."""
    p.add_argument("-n", type=int, default=4, help=f"how many {what} (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first; the others follow")
    p.add_argument("--steps", type=int, default=32, help="sampling steps (default: 32)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=out, help=f"output folder (default: {out})")
    _add_signing_options(p)


def _signer(args: argparse.Namespace):
    """The signer the signing options name (checked before anything is generated), or None."""
    if not args.sign:
        return None
    return api.signer(args.keys, cert=args.cert, key=args.key, tsa_url=args.tsa_url)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genforge", description="Create a generative model from your own data.",
        epilog="Example: genforge train ./my-images --minutes 30 --run runs/mine")
    parser.add_argument("--version", action="version", version=f"genforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model on a dataset (rerun the same command to resume)",
                       description="Train a model; rerunning the same command in the same --run "
                                   "folder resumes where it stopped.")
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    p.add_argument("--run", default="runs/genforge", help="run folder (default: runs/genforge)")
    p.add_argument("--preset", default=api.DEFAULT_PRESET, choices=list(PRESETS),
                   help=f"starting configuration (default: {api.DEFAULT_PRESET})")
    p.add_argument("--family", default="diffusion", choices=FAMILIES,
                   help="model family: diffusion (EDM), gan (StyleGAN2-style or DCGAN) or "
                        "discrete (masked diffusion over symbols: music, levels) "
                        "(default: diffusion)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and stop")
    _add_config_options(p)

    p = sub.add_parser("generate", help="generate samples from an exported model")
    p.add_argument("model", metavar="MODEL", help="an exported model folder (RUN/model)")
    p.add_argument("-n", type=int, default=64, help="how many samples (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first sample; sample i uses seed+i")
    _add_sampling_options(p)
    p.add_argument("--interpolate", default=None, metavar="SEEDS",
                   help="walk through the latents of these seeds (e.g. 1,7,42): writes frames "
                        "and walk.gif instead of -n samples")
    p.add_argument("--frames", type=int, default=16, help="frames between two seeds (default: 16)")
    p.add_argument("--no-loop", dest="loop", action="store_false",
                   help="end the walk at the last seed instead of returning to the first")
    p.add_argument("--reject-copies", action="store_true",
                   help="drop (and log) samples that copy a training item, drawing the next "
                        "seeds instead")
    p.add_argument("--train-data", default=None,
                   help="training data for --reject-copies (default: the model's own)")
    p.add_argument("--class", dest="class_label", default=None,
                   help="class index or name (default: cycle through the classes; 'none': unconditional)")
    p.add_argument("--no-watermark", dest="watermark", action="store_false",
                   help="leave images without the invisible watermark (recorded in the log)")
    p.add_argument("--bars", type=int, default=None,
                   help="music: length of each piece in bars (default: the training crops')")
    p.add_argument("--repair", action="store_true", help="levels: fix the structure (one "
                   "player, as many boxes as goals, a closed outer wall); the share is logged")
    p.add_argument("--playable-only", action="store_true", help="levels: keep generating until "
                   "N levels pass the game's check (Sokoban: solved; Lode Runner: all gold "
                   "reachable); the acceptance rate is logged")
    p.add_argument("--wav", action="store_true", help="music: also render each piece to WAV "
                   "(FluidSynth with the General MIDI sound font when installed, else a built-in "
                   "synthesiser)")
    _add_signing_options(p)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="samples", help="output folder (default: samples)")

    p = sub.add_parser("harmonize", help="music: set a melody (or some voices) for four voices",
                       description="Fill in the missing voices of a melody (a MIDI or MusicXML "
                                   "line) or of a four-part file by inpainting with a music "
                                   "diffusion model; the given voices come back exactly.")
    p.add_argument("model", metavar="MODEL", help="an exported music model folder")
    p.add_argument("melody", metavar="FILE", help="MIDI, MusicXML or Humdrum: one part (the "
                   "soprano) or four (give --voices)")
    _add_inpainting_options(p, "settings", "harmonized")
    p.add_argument("--voices", default="S", help="which voices of the file are given, as letters "
                   "of SATB (default: S)")
    p.add_argument("--wav", action="store_true", help="also render each setting to WAV")
    p.add_argument("--rules", action="store_true", help="discrete models: re-pitch generated "
                   "notes that make parallel fifths or octaves (the model picks the new pitch)")

    p = sub.add_parser("complete", help="levels: generate the missing tiles of a partial level",
                       description="Fill in the '?' tiles of a level (a text grid in the game's "
                                   "characters) by inpainting with a level diffusion model; the "
                                   "given tiles come back exactly.")
    p.add_argument("model", metavar="MODEL", help="an exported level model folder")
    p.add_argument("partial", metavar="FILE", help="the partial level, '?' for tiles to generate")
    _add_inpainting_options(p, "completions", "completed")
    p.add_argument("--repair", action="store_true", help="fix the structure of each completion")
    p.add_argument("--rules", action="store_true", help="discrete Sokoban models: the model mends "
                   "the generated tiles (closed border, a box on no dead square, boxes = goals)")

    p = sub.add_parser("evaluate", help="judge a model or a folder of generated files against a dataset",
                       description="Compute FD/FID, KID, precision/recall, density/coverage and "
                                   "memorisation; write evaluation.json, report.html and append "
                                   "the records to metrics.jsonl.")
    p.add_argument("model", metavar="MODEL", help="an exported model folder, or a folder of "
                   "generated files made by any tool")
    p.add_argument("--data", required=True, help="reference data: " + DATA_HELP)
    p.add_argument("-n", type=int, default=None, help="generated samples (default: the content "
                   "kind's: 10000 images, 1000 pieces, 500 levels)")
    p.add_argument("--extractor", default=None, help="an encoder file from 'genforge features "
                   "train', or inception-v3 (default: the encoder trained on the model's data)")
    p.add_argument("--inception-weights", default=None,
                   help="pt_inception-2015-12-05-6726825d.pth, for --extractor inception-v3")
    p.add_argument("--metrics", default=None,
                   help=f"comma-separated (default: the content kind's: {', '.join(registry.DEFAULT_METRICS)} "
                        f"for images), from: {', '.join(registry.METRICS)}")
    p.add_argument("--split", default=None, choices=("train", "validation", "test", "all"),
                   help="music: which split of --data is the reference (default: test)")
    p.add_argument("--train-data", default=None,
                   help="the model's training data for memorisation (default: --data)")
    p.add_argument("--fd-dim", type=int, default=None,
                   help="project features to this many principal directions (for few samples)")
    p.add_argument("--fd-resamples", type=int, default=10, help="bootstrap resamples for FD's interval")
    p.add_argument("--reference-limit", type=int, default=50_000, help="reference items used at most")
    p.add_argument("--seed", type=int, default=0)
    _add_sampling_options(p)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="output folder (default: next to MODEL)")

    p = sub.add_parser("features", help="feature extractors for evaluation")
    features = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = features.add_parser("train", help="train the domain encoder behind FD-<name> on a dataset")
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    p.add_argument("--out", default=None, help="encoder file (default: the cache, where evaluate finds it)")
    p.add_argument("--name", default=None, help="the name in FD-<name> (default: from the data)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--minutes", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")

    p = sub.add_parser("audit", help="check a dataset before training on it",
                       description="Sizes, exact and near duplicates, feature-space neighbours, "
                                   "unreadable files, class balance, licence/source/consent and "
                                   "C2PA training permissions of a dataset.")
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    p.add_argument("--json", action="store_true", help="print the whole record as JSON")
    p.add_argument("--out", default=None, help="also write the record to this JSON file")
    p.add_argument("--licence", "--license", dest="licence", default=None,
                   help=f"record the licence (e.g. CC-BY-4.0) in DATA/{audit.MANIFEST_NAME}")
    p.add_argument("--source", dest="manifest_source", default=None, metavar="URL",
                   help="record where the data comes from")
    p.add_argument("--consent", default=None, help="record how consent was obtained")
    p.add_argument("--no-features", dest="features", action="store_false",
                   help="skip feature-space neighbours even when an encoder is cached")
    _add_config_options(p, {"data": DataConfig}, skip=("source", "dedup"))

    p = sub.add_parser("detect", help="look for genforge's invisible watermark in images",
                       description="Report for each image whether genforge's watermark is present, "
                                   "its payload (the first 8 hex digits of the model's weights "
                                   "sha256) and a confidence.")
    p.add_argument("files", nargs="+", metavar="IMAGE")
    p.add_argument("--model", default=None, help="an exported model folder: also say whether "
                   "the payload names it")
    p.add_argument("--json", action="store_true", help="print the records as JSON")

    p = sub.add_parser("verify", help="check the C2PA manifests of files genforge (or anyone) signed",
                       description="Validate each file's C2PA manifest and show its claims; exit "
                                   "status 1 when a file is unsigned or fails validation.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--trust", default=None, help="root certificates (PEM) to trust (default: the "
                   "local development root, when there)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")

    p = sub.add_parser("keys", help="signing keys for C2PA provenance")
    keys_sub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    k = keys_sub.add_parser("init", help="create a local development PKI (a root CA and a "
                            "signing certificate) for C2PA signing")
    k.add_argument("--dir", default=None, help="keys folder (default: $GENFORGE_KEYS or "
                   "~/.config/genforge/keys)")
    k.add_argument("--name", default=None, help="the signer's common name")
    k.add_argument("--days", type=int, default=None, help="validity of the signing certificate")
    k.add_argument("--force", action="store_true", help="replace existing keys")
    k = keys_sub.add_parser("show", help="describe the keys in a keys folder")
    k.add_argument("--dir", default=None)

    p = sub.add_parser("info", help="describe an exported model")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("demo", help="train on the bundled Fashion-MNIST sample and draw garments")
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--minutes", type=float, default=4.0, help="training time (default: 4)")
    return parser


def _evaluate(args: argparse.Namespace) -> int:
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip()) if args.metrics else None
    result = api.evaluate(args.model, args.data, n=args.n, extractor=args.extractor,
                          metrics=metrics, seed=args.seed, sampler=args.sampler, steps=args.steps,
                          guidance=args.guidance, truncation=args.truncation,
                          temperature=args.temperature, rules=args.rules, fd_dim=args.fd_dim,
                          fd_resamples=args.fd_resamples, reference_limit=args.reference_limit,
                          train_data=args.train_data, inception_weights=args.inception_weights,
                          out=args.out, device=args.device,
                          data_options={"split": args.split} if args.split else None)
    for r in result["records"]:
        ci = "" if r["ci_low"] is None else f"  [{r['ci_low']:.4g}, {r['ci_high']:.4g}]"
        value = "undefined" if r["value"] is None else f"{r['value']:.5g}"
        print(f"{r['label']:>24}: {value}{ci}  ({r['generated']} vs {r['reference']}, "
              f"{r['extractor']})")
    print(f"report: {result['report']}\nrecords appended to {result['log']}")
    return 0


def _features(args: argparse.Namespace) -> int:
    info = api.train_features(args.data, args.out, name=args.name, steps=args.steps,
                              minutes=args.minutes, seed=args.seed, device=args.device,
                              progress=sys.stderr.isatty())
    print(f"encoder {info.get('name')!r} ({info.get('mode')}) written to {info['encoder']}; "
          f"numbers from it are labelled FD-{info.get('name')}")
    return 0


def _train(args: argparse.Namespace) -> int:
    skip = {"command", "data", "run", "preset", "dry_run", "family"}
    options = {k: v for k, v in vars(args).items() if k not in skip}
    config = api.resolve_config(args.data, args.preset, args.family, **options)
    if args.dry_run:
        print(config.to_json())
        return 0
    summary = api.train(run=args.run, config=config)
    print(api.summary_markdown(summary), end="")
    if summary["status"] == "interrupted":
        print(f"stopped at step {summary['steps']}: checkpoint saved; rerun the same command to resume")
        return 130
    return 0


def _generate(args: argparse.Namespace) -> int:
    model = api.load(args.model, device=args.device)
    options = dict(sampler=args.sampler, steps=args.steps, guidance=args.guidance,
                   truncation=args.truncation, temperature=args.temperature, rules=args.rules)
    if args.interpolate:
        try:
            seeds = [int(s) for s in args.interpolate.split(",") if s.strip()]
        except ValueError:
            raise GenforgeError(f"--interpolate takes seeds separated by commas (e.g. 1,7,42), "
                                f"got {args.interpolate!r}") from None
        items = model.interpolate(seeds, frames=args.frames, loop=args.loop,
                                  class_label=args.class_label, out=args.out,
                                  watermark=args.watermark, sign=args.sign, signer=_signer(args),
                                  **{k: v for k, v in options.items() if v is not None})
        print(f"wrote {len(items)} frames, walk.gif and generation.json to {args.out}")
        return 0
    items = model.generate(args.n, seed=args.seed, class_label=args.class_label,
                           batch_size=args.batch_size, reject_copies=args.reject_copies,
                           train_data=args.train_data, watermark=args.watermark,
                           sign=args.sign, signer=_signer(args), bars=args.bars,
                           audio=args.wav, repair=args.repair,
                           playable_only=args.playable_only, out=args.out,
                           **options)
    record = json.loads((Path(args.out) / "generation.json").read_text())
    rejected, mark, c2pa = record["rejected_copies"], record["watermark"], record["c2pa"]
    print(f"wrote {len(items)} samples, grid.png and generation.json to {args.out}"
          + (f"; {len(rejected)} copies of training items rejected and logged" if rejected else ""))
    play = record.get("playability")
    if play:
        print(f"playable: {play['playable']} of {play['tried']} generated levels "
              f"({play['acceptance_rate']:.1%})" + (f", {play['repaired']} repaired" if play["repair"] else ""))
    print(f"watermark: payload {mark['payload']} in every image" if mark["applied"]
          else f"watermark: none ({mark['reason']})")
    print(f"C2PA: every file signed by {c2pa['signer']}"
          + (f" (music and level files in {', '.join(record['signed_packs'])})"
             if record["signed_packs"] else "") if c2pa["signed"] else f"C2PA: none ({c2pa['reason']})")
    return 0


def _harmonize(args: argparse.Namespace) -> int:
    model = api.load(args.model, device=args.device)
    items = model.harmonize(args.melody, n=args.n, seed=args.seed, voices=args.voices,
                            steps=args.steps, rules=args.rules, sign=args.sign,
                            signer=_signer(args), audio=args.wav, out=args.out)
    print(f"wrote {len(items)} settings of {args.melody} (MIDI, MusicXML, piano rolls) to {args.out}")
    return 0


def _complete(args: argparse.Namespace) -> int:
    model = api.load(args.model, device=args.device)
    items = model.complete(args.partial, n=args.n, seed=args.seed, steps=args.steps,
                           repair=args.repair, rules=args.rules, sign=args.sign,
                           signer=_signer(args), out=args.out)
    record = json.loads((Path(args.out) / "generation.json").read_text())
    playable = sum(bool(item.get("playable")) for item in record["items"])
    print(f"wrote {len(items)} completions of {args.partial} to {args.out}; {playable} playable")
    return 0


def _verify(args: argparse.Namespace) -> int:
    reports = api.verify(args.files, trust=args.trust)
    if args.json:
        print(json.dumps([asdict(r) for r in reports], indent=2, default=str))
    else:
        for report in reports:
            print("\n".join(report.lines()))
    return 0 if all(r.ok for r in reports) else 1


def _keys(args: argparse.Namespace) -> int:
    if args.keys_command == "init":
        info = api.init_keys(args.dir, name=args.name, days=args.days, force=args.force)
        print(f"wrote a development root CA and signing certificate to {info['folder']}\n"
              f"signer: {info['signer']['subject']}, valid until {info['signer']['not_after']}\n"
              "files signed with it verify as trusted only where root-ca.pem is trusted "
              "(genforge verify --trust); use --cert/--key for a production certificate")
        return 0
    print(json.dumps(api.describe_keys(args.dir), indent=2))
    return 0


def _detect(args: argparse.Namespace) -> int:
    records = api.detect(args.files, model=args.model)
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    for r in records:
        if r["found"]:
            names = ("" if "matches_model" not in r else
                     ", names this model" if r["matches_model"] else ", NOT this model's payload")
            print(f"{r['file']}: watermark found, payload {r['payload']}{names}, "
                  f"confidence {r['confidence']:.6f}")
        elif r["too_small"]:
            h, w = r["size"]
            print(f"{r['file']}: no watermark can be read from a {h}x{w} image (the minimum is "
                  "128x128); check its C2PA manifest or generation record instead")
        else:
            print(f"{r['file']}: no genforge watermark found")
    return 0


def _audit(args: argparse.Namespace) -> int:
    skip = {"command", "data", "json", "out", "licence", "manifest_source", "consent", "features"}
    options = {k: v for k, v in vars(args).items() if k not in skip}
    manifest = {"licence": args.licence, "source": args.manifest_source, "consent": args.consent}
    record = api.audit(args.data, out=args.out, manifest=manifest, features=args.features, **options)
    print(json.dumps(record, indent=2) if args.json else audit.text(record), end="\n" if args.json else "")
    return 0


def _info(args: argparse.Namespace) -> int:
    info = api.load(args.model, device="cpu").info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    m = info["manifest"]
    print(f"{info['folder']}: {info['family']} model for {info['kind']} items of shape "
          f"{info['item_shape']}, {info['parameters']:,} parameters")
    print(f"classes: {', '.join(info['classes']) or 'none (unconditional)'}")
    print(f"trained: {m['training']['steps']} steps, {m['training']['images_seen']:,} images, "
          f"on {m['dataset']['source']} ({m['dataset']['items']} items, fingerprint "
          f"{m['dataset']['fingerprint'][:12]})")
    print(f"genforge {m['genforge_version']}, torch {m['torch_version']}, config {m['config_hash']}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    summary = api.train("fashion-mnist-sample", out / "run", minutes=args.minutes,
                        sample_every=10**9, progress=sys.stderr.isatty())
    model = api.load(out / "run" / "model")
    model.generate(100, seed=0, guidance=2.0, out=out / "samples")
    lines = [
        f"genforge demo: {summary['steps']} steps in {summary['training_seconds']} s "
        f"on {summary['device']} ({summary['images_per_second']} images/s), final loss {summary['final_loss']:.4f}",
        f"sample grid (one class per column: {', '.join(model.class_names)}): {out / 'samples' / 'grid.png'}",
        f"exported model: {out / 'run' / 'model'}  (try: genforge generate {out / 'run' / 'model'} -n 16)",
    ]
    io.write_text(out / "summary.txt", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


COMMANDS = {"train": _train, "generate": _generate, "evaluate": _evaluate, "features": _features,
            "harmonize": _harmonize, "complete": _complete, "audit": _audit, "detect": _detect, "verify": _verify, "keys": _keys, "info": _info,
            "demo": _demo}


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Library warnings as one line for people, without the source location."""
    print(f"genforge: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        return COMMANDS[args.command](args)
    except GenforgeError as err:
        print(f"genforge: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genforge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
