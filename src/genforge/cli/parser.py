"""The command line: a thin shell that parses, calls genforge.api and formats the result.

Every option is built from the library's declarations (cli.flags), so it is declared once; the
commands themselves are in cli.commands, the progress display in cli.reporters.
"""
from __future__ import annotations

import argparse

from .. import api
from ..version import __version__
from . import flags, reporters

DATA_HELP = ("a folder of images, music (MIDI, MusicXML, Humdrum) or levels (XSB; text grids "
             "with --kind level --legend), or a dataset name "
             f"({', '.join(name for names in api.dataset_names().values() for name in names)})")


def add_signing_options(p: argparse.ArgumentParser) -> None:
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


def add_sampling_device_options(p: argparse.ArgumentParser) -> None:
    """--device and --precision, for the commands that sample from a model."""
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=api.SAMPLING_PRECISIONS,
                   help="what the network samples in: auto times fp32 and bf16 here (once per "
                        "model and options, cached) and takes the faster whose samples agree; "
                        "the choice and why are in generation.json")


def add_inpainting_options(p: argparse.ArgumentParser, what: str, out: str) -> None:
    """What harmonize and complete share: how many, seeds, steps, device, output and signing."""
    p.add_argument("-n", type=int, default=4, help=f"how many {what} (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first; the others follow")
    flags.add_sampling_options(p, inpainting=True)
    add_sampling_device_options(p)
    p.add_argument("--out", default=out, help=f"output folder (default: {out})")
    add_signing_options(p)


def signer_of(args: argparse.Namespace):
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
    # What every long-running command takes: how to show its progress.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--progress", default="bar", choices=reporters.MODES,
                        help="bar (on a terminal), jsonl (one JSON event per line on stdout, for "
                             "another program; the command's own output then goes to stderr) "
                             "or none (no bars; messages such as 'resuming' still show) "
                             "(default: bar)")

    p = sub.add_parser("train", help="train a model on a dataset (rerun the same command to resume)",
                       description="Train a model; rerunning the same command in the same --run "
                                   "folder resumes where it stopped.", parents=[common])
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    p.add_argument("--run", default="runs/genforge", help="run folder (default: runs/genforge)")
    p.add_argument("--preset", default=api.DEFAULT_PRESET, choices=api.presets(),
                   help=f"starting configuration (default: {api.DEFAULT_PRESET})")
    p.add_argument("--family", default="auto", choices=("auto", *api.families()),
                   help="model family: diffusion (EDM), gan (StyleGAN2-style or DCGAN) or "
                        "discrete (masked diffusion over symbols); auto: the one measured best "
                        "for the data's content kind: "
                        + ", ".join(f"{kind} {family}" for kind, family in api.kind_families().items())
                        + " (default: auto)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and stop")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train in N processes on this machine (one per GPU, or CPU processes "
                        "sharing the cores), started with torchrun; --batch-size stays the "
                        "global batch; --grad-accum, if given, must be a multiple of N (not given: "
                        "each process computes its share of the batch) (default: 1)")
    flags.add_config_options(p)

    p = sub.add_parser("distill", help="tune a diffusion model to sample in 1-2 steps "
                       "(rerun the same command to resume)",
                       description="Easy Consistency Tuning of an exported EDM diffusion model: "
                                   "the result samples in 1 or 2 network evaluations (generate "
                                   "--steps 1|2). Rerunning the same command resumes. The "
                                   "network, data and the options not given are the model's "
                                   "own, except where tuning has its own default (shown).",
                       parents=[common])
    p.add_argument("model", metavar="MODEL", help="an exported diffusion model folder (RUN/model)")
    p.add_argument("--run", default=None, help="run folder (default: RUN-distill beside RUN)")
    flags.add_declared(p.add_argument_group("tuning options"), api.distill_declarations())

    p = sub.add_parser("generate", help="generate samples from an exported model", parents=[common])
    p.add_argument("model", metavar="MODEL", help="an exported model folder (RUN/model)")
    p.add_argument("-n", type=int, default=64, help="how many samples (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first sample; sample i uses seed+i")
    flags.add_sampling_options(p)
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
                   help="class index or name (default: seed s draws class s mod K, so the samples "
                        "cycle through the classes; 'none': unconditional)")
    p.add_argument("--no-watermark", dest="watermark", action="store_false",
                   help="leave images without the invisible watermark (recorded in the log)")
    flags.add_declared(p.add_argument_group("display copies (images under 128x128 are too small "
                                            "for the watermark; their upscaled copies carry it)"),
                       api.display_declarations())
    p.add_argument("--bars", type=int, default=None,
                   help="music: length of each piece in bars (default: the training crops')")
    p.add_argument("--repair", action="store_true", help="levels: fix the structure (one "
                   "player, as many boxes as goals, a closed outer wall); the share is logged")
    p.add_argument("--playable-only", action="store_true", help="levels: keep generating until "
                   "N levels pass the game's check (Sokoban: solved; Lode Runner: all gold "
                   "reachable); the acceptance rate is logged")
    flags.add_declared(p.add_argument_group("level filters"), api.level_filter_declarations())
    p.add_argument("--wav", action="store_true", help="music: also render each piece to WAV "
                   "(FluidSynth with the General MIDI sound font when installed, else a built-in "
                   "synthesiser)")
    add_signing_options(p)
    p.add_argument("--batch-size", type=int, default=64)
    add_sampling_device_options(p)
    p.add_argument("--out", default="samples", help="output folder (default: samples)")

    p = sub.add_parser("harmonize", help="music: set a melody (or some voices) for four voices",
                       description="Fill in the missing voices of a melody (a MIDI or MusicXML "
                                   "line) or of a four-part file by inpainting with a music "
                                   "diffusion model; the given voices come back exactly.",
                       parents=[common])
    p.add_argument("model", metavar="MODEL", help="an exported music model folder")
    p.add_argument("melody", metavar="FILE", help="MIDI, MusicXML or Humdrum: one part (the "
                   "soprano) or four (give --voices)")
    add_inpainting_options(p, "settings", "harmonized")
    p.add_argument("--voices", default="S", help="which voices of the file are given, as letters "
                   "of SATB (default: S)")
    p.add_argument("--wav", action="store_true", help="also render each setting to WAV")

    p = sub.add_parser("complete", help="levels: generate the missing tiles of a partial level",
                       description="Fill in the '?' tiles of a level (a text grid in the game's "
                                   "characters) by inpainting with a level diffusion model; the "
                                   "given tiles come back exactly.", parents=[common])
    p.add_argument("model", metavar="MODEL", help="an exported level model folder")
    p.add_argument("partial", metavar="FILE", help="the partial level, '?' for tiles to generate")
    add_inpainting_options(p, "completions", "completed")
    p.add_argument("--repair", action="store_true", help="fix the structure of each completion")

    p = sub.add_parser("evaluate", help="judge a model or a folder of generated files against a dataset",
                       description="Compute FD/FID, KID, precision/recall, density/coverage and "
                                   "memorisation; write evaluation.json, report.html and append "
                                   "the records to metrics.jsonl.", parents=[common])
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
                   help=f"comma-separated (default: the content kind's: "
                        f"{', '.join(api.default_metrics()['image'])} for images), from: "
                        f"{', '.join(api.metric_names())}")
    p.add_argument("--train-data", default=None,
                   help="the model's training data for memorisation (default: --data)")
    p.add_argument("--fd-dim", type=int, default=None,
                   help="project features to this many principal directions (default: none, or "
                        "a quarter of the samples where they are fewer than the features)")
    p.add_argument("--train-encoder", action="store_true",
                   help="where no feature extractor for this data exists yet, train the domain "
                        "encoder on the model's training data first (a few minutes), so FD, KID "
                        "and precision/recall can be reported")
    p.add_argument("--fd-resamples", type=int, default=10, help="bootstrap resamples for FD's interval")
    p.add_argument("--reference-limit", type=int, default=50_000, help="reference items used at most")
    p.add_argument("--seed", type=int, default=0)
    flags.add_sampling_options(p)
    p.add_argument("--steps-sweep", default=None, metavar="COUNTS",
                   help="also measure FD and sampling time per sample at these numbers of "
                        "network evaluations (e.g. 1,2,4,8,16,35), for each deterministic "
                        "sampler of the model: sweep.json and a plot in the report")
    add_sampling_device_options(p)
    p.add_argument("--out", default=None, help="output folder (default: next to MODEL)")
    reference = p.add_argument_group("reference data options (default: the model's; music and "
                                     "levels: the held-out test split, e.g. --split validation)")
    flags.add_declared(reference, [d for group in api.data_sections().values() for d in group
                                   if d.name not in ("source", "kind", "dedup")])

    p = sub.add_parser("features", help="feature extractors for evaluation")
    features = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = features.add_parser("train", help="train the domain encoder behind FD-<name> on a dataset",
                            parents=[common])
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
                                   "C2PA training permissions of a dataset.", parents=[common])
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    p.add_argument("--json", action="store_true", help="print the whole record as JSON")
    p.add_argument("--out", default=None, help="also write the record to this JSON file")
    p.add_argument("--licence", "--license", dest="licence", default=None,
                   help=f"record the licence (e.g. CC-BY-4.0) in DATA/{api.DATASET_MANIFEST}")
    p.add_argument("--source", dest="manifest_source", default=None, metavar="URL",
                   help="record where the data comes from")
    p.add_argument("--consent", default=None, help="record how consent was obtained")
    p.add_argument("--no-features", dest="features", action="store_false",
                   help="skip feature-space neighbours even when an encoder is cached")
    flags.add_config_options(p, sections=(), skip=("source", "dedup"))

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

    p = sub.add_parser("export", help="export a model for use without PyTorch (ONNX; needs "
                       "pip install 'genforge[runtime]')")
    p.add_argument("model", metavar="MODEL", help="an exported model folder (RUN/model)")
    p.add_argument("--format", choices=api.EXPORT_FORMATS, default="onnx",
                   help="exchange format (default: onnx)")
    p.add_argument("--out", default=None, help="output folder (default: MODEL-onnx beside it)")

    p = sub.add_parser("info", help="describe an exported model")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("studio", help="serve the studio: a job queue and REST API (needs "
                       "pip install 'genforge[studio]')",
                       description="Serve the studio's REST API (docs at /docs) and run its jobs "
                                   "in worker processes; jobs, datasets and outputs live in the "
                                   "studio home and survive restarts and crashes.")
    p.add_argument("--home", default=None, help="studio home folder (default: "
                   "$GENFORGE_STUDIO_HOME or ~/genforge-studio)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: "
                   "127.0.0.1, this machine only; any other requires the access token, made "
                   "and printed at the first such start)")
    p.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0: any free one)")
    p.add_argument("--workers", type=int, default=1, help="jobs that run at the same time "
                   "(default: 1)")

    p = sub.add_parser("demo", help="train on the bundled Fashion-MNIST sample and draw garments",
                       parents=[common])
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--minutes", type=float, default=4.0, help="training time (default: 4)")
    return parser
