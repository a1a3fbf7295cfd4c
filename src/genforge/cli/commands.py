"""The CLI's commands: each parses nothing itself (cli.parser did), calls genforge.api and
prints the result for people."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from .. import api, io
from ..errors import GenforgeError
from . import flags
from .parser import signer_of


def _evaluate(args: argparse.Namespace) -> int:
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip()) if args.metrics else None
    data_names = {d.name for group in api.data_sections().values() for d in group}
    data_options = {k: v for k, v in vars(args).items() if k in data_names}
    result = api.evaluate(args.model, args.data, n=args.n, extractor=args.extractor,
                          metrics=metrics, seed=args.seed, fd_dim=args.fd_dim,
                          fd_resamples=args.fd_resamples, reference_limit=args.reference_limit,
                          train_data=args.train_data, inception_weights=args.inception_weights,
                          out=args.out, device=args.device, data_options=data_options or None,
                          train_encoder_now=args.train_encoder, steps_sweep=args.steps_sweep,
                          precision=args.precision, **flags.given(args))
    for r in result["records"]:
        ci = "" if r["ci_low"] is None else f"  [{r['ci_low']:.4g}, {r['ci_high']:.4g}]"
        value = "undefined" if r["value"] is None else f"{r['value']:.5g}"
        print(f"{r['label']:>24}: {value}{ci}  ({r['generated']} vs {r['reference']}, "
              f"{r['extractor']})")
    for r in result.get("sweep", []):
        value = "undefined" if r["fd"] is None else f"{r['fd']:.5g}"
        print(f"{r['sampler']:>12} {r['evaluations']:>4} evaluations: {r['label']} {value}, "
              f"{1000 * r['seconds_per_sample']:.2f} ms a sample")
    print(f"report: {result['report']}\nrecords appended to {result['log']}")
    return 0


def _features(args: argparse.Namespace) -> int:
    info = api.train_features(args.data, args.out, name=args.name, steps=args.steps,
                              minutes=args.minutes, seed=args.seed, device=args.device)
    print(f"encoder {info.get('name')!r} ({info.get('mode')}) written to {info['encoder']}; "
          f"numbers from it are labelled FD-{info.get('name')}")
    return 0


def _train(args: argparse.Namespace) -> int:
    skip = {"command", "data", "run", "preset", "dry_run", "family", "progress", "nproc", "argv"}
    options = {k: v for k, v in vars(args).items() if k not in skip}
    if args.nproc > 1 and not args.dry_run and not api.process_world().size > 1:
        config = api.resolve_config(args.data, args.preset, args.family, **options)
        if args.grad_accum is not None:  # otherwise each process takes its share (runs.train)
            api.check_processes(config.train.grad_accum, args.nproc)  # once, before any starts
        # each process runs this command; rank 0 prints the summary (or where it stopped)
        return api.launch_processes(args.nproc, _without_nproc(args.argv))
    if args.dry_run:
        check = api.preflight(args.data, args.run, preset=args.preset, family=args.family,
                              **options)
        print(preflight_text(check), file=sys.stderr, end="")
        print(json.dumps(check["config"], indent=2, sort_keys=True))
        return 0
    summary = api.train(args.data, args.run, preset=args.preset, family=args.family, **options)
    if not api.process_world().main:
        return 130 if summary["status"] == "interrupted" else 0  # rank 0 speaks for all
    print(api.summary_markdown(summary), end="")
    if summary["status"] == "interrupted":
        print(f"stopped at step {summary['steps']}: checkpoint saved; rerun the same command to resume")
        return 130
    return 0


def _distill(args: argparse.Namespace) -> int:
    names = {d.name for d in api.distill_declarations()}
    summary = api.distill(args.model, args.run,
                          **{k: v for k, v in vars(args).items() if k in names})
    print(api.summary_markdown(summary), end="")
    source = summary["tuned_from"]
    print(f"- tuned from: {source['model']} ({source['training'].get('steps', '?')} steps, "
          f"{source['training'].get('seconds', '?')} s of training); sample it with: genforge "
          f"generate {summary['model']} --steps 2 (or 1)")
    if summary["status"] == "interrupted":
        print(f"stopped at step {summary['steps']}: checkpoint saved; rerun the same command to resume")
        return 130
    return 0


def _without_nproc(argv: list[str]) -> list[str]:
    """The command line each process runs: this one without --nproc."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def preflight_text(check: dict) -> str:
    """The preflight (--dry-run) for people: data, family, run folder, budget."""
    d, b = check["data"], check["budget"]
    classes = f", {len(d['classes'])} classes" if d["classes"] else ""
    lines = [f"data: {d['source']}: {d['items']} {d['kind']} items of shape {d['item_shape']}"
             f"{classes} ({d['found']} found, {d['skipped']} skipped"
             + (f", first: {d['first_skipped'][0]}: {d['first_skipped'][1]}"
                if d["first_skipped"] else "")
             + (f"; {d['left_out']} left out by the audit" if d["left_out"] else "") + ")",
             *(f"warning: {w}" for w in d["warnings"]),
             f"family: {check['family']}; preset {check['preset']}; augment {check['augment']}",
             f"run folder: {check['run']['folder']} ({check['run']['state']})"]
    if "seconds_per_step" in b:
        asked = " and ".join(x for x in (f"{b['steps']} steps" if b["steps"] is not None else "",
                                         f"{b['minutes']} minutes" if b["minutes"] else "") if x)
        lines.append(f"budget: {asked}: about {b['expected_steps']} steps in "
                     f"{b['expected_minutes']:.1f} minutes at {b['seconds_per_step']:.3f} s a "
                     f"step on {b['device']} ({b['precision']}: {b['precision_why']}; measured "
                     f"over {b['measured_steps']} steps here)")
    return "\n".join(lines) + "\nresolved configuration (stdout):\n"


def _generate(args: argparse.Namespace) -> int:
    model = api.load(args.model, device=args.device, precision=args.precision)
    options = flags.given(args)
    shown = {d.name: getattr(args, d.name, None) for d in api.display_declarations()}
    if args.interpolate:
        try:
            seeds = [int(s) for s in args.interpolate.split(",") if s.strip()]
        except ValueError:
            raise GenforgeError(f"--interpolate takes seeds separated by commas (e.g. 1,7,42), "
                                f"got {args.interpolate!r}") from None
        items = model.interpolate(seeds, frames=args.frames, loop=args.loop,
                                  class_label=args.class_label, out=args.out,
                                  watermark=args.watermark, sign=args.sign, signer=signer_of(args),
                                  **shown, **{k: v for k, v in options.items() if v is not None})
        print(f"wrote {len(items)} frames, walk.gif and generation.json to {args.out}")
        return 0
    items = model.generate(args.n, seed=args.seed, class_label=args.class_label,
                           batch_size=args.batch_size, reject_copies=args.reject_copies,
                           train_data=args.train_data, watermark=args.watermark,
                           sign=args.sign, signer=signer_of(args), bars=args.bars,
                           audio=args.wav, repair=args.repair,
                           playable_only=args.playable_only, out=args.out,
                           **{d.name: getattr(args, d.name, None)
                              for d in api.level_filter_declarations()},
                           **shown, **options)
    record = json.loads((Path(args.out) / "generation.json").read_text())
    rejected, mark, c2pa = record["rejected_copies"], record["watermark"], record["c2pa"]
    print(f"wrote {len(items)} samples, grid.png and generation.json to {args.out}"
          + (f"; {len(rejected)} copies of training items rejected and logged" if rejected else ""))
    play = record.get("playability")
    if play:
        print(f"playable: {play['playable']} of {play['tried']} generated levels "
              f"({play['acceptance_rate']:.1%})" + (f", {play['repaired']} repaired" if play["repair"] else "")
              + (f"; {play['noisy']} of the {len(items)} kept look like noise (fewer runs of "
                 "equal tiles than 95% of the shipped levels)" if play.get("noisy") else ""))
    print(f"watermark: payload {mark['payload']} in every image" if mark["applied"]
          else f"watermark: none ({mark['reason']})")
    copies = record.get("display")
    if copies:
        h, w = copies["size"]
        print(f"display copies: {len(items)} at {h}x{w} ({copies['resample']}), beside the "
              "native files as <seed>-display.png, "
              + (f"watermark payload {copies['watermark']['payload']}"
                 if copies["watermark"]["applied"]
                 else f"no watermark ({copies['watermark']['reason']})"))
    print(f"C2PA: every file signed by {c2pa['signer']}"
          + (f" (music and level files in {', '.join(record['signed_packs'])})"
             if record["signed_packs"] else "") if c2pa["signed"] else f"C2PA: none ({c2pa['reason']})")
    return 0


def _harmonize(args: argparse.Namespace) -> int:
    model = api.load(args.model, device=args.device, precision=args.precision)
    items = model.harmonize(args.melody, n=args.n, seed=args.seed, voices=args.voices,
                            sign=args.sign, signer=signer_of(args), audio=args.wav, out=args.out,
                            **flags.given(args, inpainting=True))
    print(f"wrote {len(items)} settings of {args.melody} (MIDI, MusicXML, piano rolls) to {args.out}")
    return 0


def _complete(args: argparse.Namespace) -> int:
    model = api.load(args.model, device=args.device, precision=args.precision)
    items = model.complete(args.partial, n=args.n, seed=args.seed, repair=args.repair,
                           sign=args.sign, signer=signer_of(args), out=args.out,
                           **flags.given(args, inpainting=True))
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
                  "128x128); check its C2PA manifest or generation record instead, or its "
                  "display copy (generate --display-size)")
        else:
            print(f"{r['file']}: no genforge watermark found")
    return 0


def _audit(args: argparse.Namespace) -> int:
    skip = {"command", "data", "json", "out", "licence", "manifest_source", "consent", "features",
            "progress"}
    options = {k: v for k, v in vars(args).items() if k not in skip}
    manifest = {"licence": args.licence, "source": args.manifest_source, "consent": args.consent}
    record = api.audit(args.data, out=args.out, manifest=manifest, features=args.features, **options)
    print(json.dumps(record, indent=2) if args.json else api.audit_text(record), end="\n" if args.json else "")
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


def _export(args: argparse.Namespace) -> int:
    out = api.export(args.model, format=args.format, out=args.out)
    print(f"exported {args.model} as {args.format.upper()}: {out}  (run it without PyTorch: "
          f"python -m genforge.runtime {out} -n 16 --out samples)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    summary = api.train("fashion-mnist-sample", out / "run", minutes=args.minutes,
                        sample_every=10**9)
    model = api.load(out / "run" / "model")
    model.generate(100, seed=0, out=out / "samples")  # the kind's measured guidance
    lines = [
        f"genforge demo: {summary['steps']} steps in {summary['training_seconds']} s "
        f"on {summary['device']} ({summary['images_per_second']} images/s), final loss {summary['final_loss']:.4f}",
        f"precision: {summary['precision']} ({summary['precision_choice']['why']})",
        f"sample grid (one class per column: {', '.join(model.class_names)}): {out / 'samples' / 'grid.png'}",
        f"exported model: {out / 'run' / 'model'}  (try: genforge generate {out / 'run' / 'model'} -n 16)",
    ]
    io.write_text(out / "summary.txt", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _studio(args: argparse.Namespace) -> int:
    from .. import studio  # only here: the core CLI never imports the studio's web packages
    return studio.serve(args.home or studio.DEFAULT_HOME, args.host, args.port, args.workers)


COMMANDS = {"train": _train, "distill": _distill, "generate": _generate, "evaluate": _evaluate, "features": _features,
            "harmonize": _harmonize, "complete": _complete, "audit": _audit, "detect": _detect,
            "verify": _verify, "keys": _keys, "info": _info, "export": _export, "demo": _demo, "studio": _studio}
