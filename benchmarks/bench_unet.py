"""genforge's U-Net against diffusers' UNet2DModel of the same size, measured in the same run.

For each configuration and precision (fp32, bf16 autocast) it prints training throughput
(images/s, one EDM-loss forward + backward + AdamW step), sampling cost (ms per network evaluation
per image, no_grad), peak resident memory (ru_maxrss of a fresh subprocess, minus the same figure
after imports), the FLOP of one step (torch.utils.flop_counter: convolutions and matrix products)
and the FLOP/s achieved against a GEMM peak measured here in the same precision, then
genforge/diffusers ratios. The CPU model and whether it has native bf16 head the output. Both networks sit behind the same EDMDenoiser and loss, so only the raw network differs.
The diffusers model mirrors genforge's levels, channel multipliers, attention levels (by level, not
by pixel size, since genforge may fold pixels into channels first), scale-shift conditioning and
class embedding; its base width and blocks per level are searched so that the parameter counts
agree within 10%.

Run by hand:  python benchmarks/bench_unet.py [--batch 64] [--threads 2] [--iters 5] [--quick]
               [--precisions fp32,bf16] [--configs cpu-p1] [--layout nchw|channels-last]
               [--compile]
On CPUs without AMX or AVX512-BF16, PyTorch emulates bf16 (about 15x slower): the bf16 rows then
say what `--precision auto` avoids.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from _cli import cpu_model  # noqa: E402

# (label, genforge preset, channels, side, classes, network overrides)
CONFIGS = {
    "cpu-small": ("cpu-small 28x28x1, 10 classes", "cpu-small", 1, 28, 10, {}),
    "cpu": ("cpu 32x32x3, 10 classes", "cpu", 3, 32, 10, {}),
    # The same network without the 2x2 patch stem: the layout diffusers uses, so this row
    # compares implementations rather than architectures.
    "cpu-p1": ("cpu, patch_size 1, 32x32x3", "cpu", 3, 32, 10, {"patch_size": 1}),
}


def preset_config(preset: str, overrides: dict):
    """genforge's resolved config for a preset with network overrides."""
    from genforge.config import make_config
    return make_config(preset, {"network": overrides})
# issue 27's targets: genforge at least 1.5x diffusers on both speed figures on a CPU with
# native bf16, 1.2x on one without
TARGET_SPEEDUP = {True: 1.5, False: 1.2}


LAYOUTS = ("nchw", "channels-last")  # --layout, besides each library's default


def _layouts() -> dict:
    import torch
    return {"nchw": torch.contiguous_format, "channels-last": torch.channels_last}


def _groups(channels: int) -> int:
    """GroupNorm groups as genforge picks them (up to 32, at least 4 channels per group)."""
    groups = max(1, min(32, channels // 4))
    while channels % groups:
        groups -= 1
    return groups


def build_genforge(preset: str, channels: int, side: int, classes: int, overrides: dict):
    """genforge's raw U-Net for a preset, built through the library's own path."""
    from genforge.families.base import ModelSpec
    from genforge.families.diffusion import build_denoiser
    spec = ModelSpec("image", (channels, side, side), tuple(str(c) for c in range(classes)))
    return build_denoiser(spec, preset_config(preset, overrides)).net


def attention_levels(net) -> list[bool]:
    """For each resolution level of a built genforge U-Net: does its down path attend?"""
    from torch import nn
    from genforge.models.unet import Attention
    levels = [False]
    for layer in net.down:
        if isinstance(layer, nn.ModuleList):
            levels[-1] |= any(isinstance(sub, Attention) for sub in layer)
        else:  # a strided conv: the next level starts
            levels.append(False)
    return levels


def diffusers_kwargs(preset: str, channels: int, side: int, classes: int, base: int,
                     layers: int, attend: list[bool]) -> dict:
    """UNet2DModel arguments mirroring genforge's structure at a given base width and depth."""
    from genforge.config import make_config
    n = make_config(preset).network
    return dict(
        sample_size=side, in_channels=channels, out_channels=channels,
        block_out_channels=tuple(base * m for m in n.channel_mult), layers_per_block=layers,
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attend),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attend)),
        attention_head_dim=32, norm_num_groups=_groups(base), resnet_time_scale_shift="scale_shift",
        dropout=n.dropout, num_class_embeds=classes + 1 if classes else None)  # +1: "no class" row


def match_diffusers(preset: str, channels: int, side: int, classes: int, net) -> dict:
    """The diffusers config closest in parameters to net's, attending at the same levels and
    preferring genforge's depth."""
    from diffusers import UNet2DModel
    from genforge.config import make_config
    depth = make_config(preset).network.num_blocks
    target, attend = sum(p.numel() for p in net.parameters()), attention_levels(net)
    best = None
    for layers in sorted({depth, 1, 2, 3}, key=lambda d: d != depth):
        for base in range(8, 257, 4):
            kwargs = diffusers_kwargs(preset, channels, side, classes, base, layers, attend)
            if min(kwargs["block_out_channels"]) < kwargs["attention_head_dim"]:
                continue  # some attention layer would get zero heads
            count = sum(p.numel() for p in UNet2DModel(**kwargs).parameters())
            if best is None or abs(count - target) < abs(best[0] - target):
                best = (count, kwargs)
            if count > target * 1.1:
                break
        if abs(best[0] - target) <= 0.1 * target:
            return best[1]  # same depth as genforge where any width lands within 10%
    raise SystemExit(f"no UNet2DModel within 10% of {target:,} parameters (closest {best[0]:,})")


class DiffusersNet:
    """Adapts UNet2DModel to genforge's raw-network contract F(x, c_noise, class_labels)."""

    def __new__(cls, kwargs: dict):
        import torch
        from diffusers import UNet2DModel

        class Adapter(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.unet = UNet2DModel(**kwargs)
                self.num_classes = (kwargs["num_class_embeds"] or 1) - 1

            def forward(self, x, noise, class_labels=None):
                if self.num_classes:
                    if class_labels is None:
                        class_labels = torch.full((len(x),), -1, device=x.device)
                    class_labels = torch.where(class_labels < 0, self.num_classes, class_labels)
                # c_noise * 250 spans a timestep-like range, as genforge's embedding does.
                return self.unet(x, noise * 250.0, class_labels=class_labels).sample

        return Adapter()


def gemm_peak(job: dict) -> dict:
    """FLOP/s of a square matrix product in one precision: the ceiling the networks are held to."""
    import torch
    torch.set_num_threads(job["threads"])
    n, dtype = 1024, torch.bfloat16 if job["precision"] == "bf16" else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    times = []
    for i in range(3 + job["iters"]):
        start = time.perf_counter()
        torch.mm(a, b)
        if i >= 3:
            times.append(time.perf_counter() - start)
    return {"flops": 2 * n ** 3 / statistics.median(times)}


def worker(job: dict) -> dict:
    """One measurement in this (fresh) process: train or sample, one network, one precision."""
    import torch
    if job["mode"] == "gemm":
        return gemm_peak(job)
    import diffusers  # noqa: F401  (imported by both kinds, so the memory baselines agree)
    import genforge  # noqa: F401
    from genforge.families.diffusion import edm_loss
    from genforge.models.precond import EDMDenoiser

    torch.set_num_threads(job["threads"])
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    torch.manual_seed(0)
    _, preset, channels, side, classes, overrides = CONFIGS[job["config"]]
    net = (build_genforge(preset, channels, side, classes, overrides) if job["net"] == "genforge"
           else DiffusersNet(job["diffusers_kwargs"]))
    denoiser = EDMDenoiser(net)
    b = job["batch"]
    images = torch.rand(b, channels, side, side) * 2 - 1
    layout = _layouts().get(job.get("layout", "default"))
    if layout is not None:  # both networks and their batches in one layout
        denoiser.to(memory_format=layout)
        images = images.contiguous(memory_format=layout)
    if job.get("compile"):
        denoiser.net = torch.compile(denoiser.net)
    labels = torch.randint(classes, (b,)) if classes else None
    generator = torch.Generator().manual_seed(0)
    # The training loop's own autocast: bf16 matrix products, fp32 weights and optimizer state.
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=job["precision"] == "bf16")

    if job["mode"] == "train":
        denoiser.train()
        optimizer = torch.optim.AdamW(denoiser.parameters(), lr=1e-4)

        def step():
            with autocast:
                loss = edm_loss(denoiser, images, labels, generator, -1.2, 1.2, 0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    else:
        denoiser.eval()
        if job["net"] == "genforge" and layout is None:  # the layout genforge.load gives
            from genforge.export import SAMPLING_MEMORY_FORMAT
            denoiser.to(memory_format=SAMPLING_MEMORY_FORMAT)
        sigma = torch.full((b,), 2.0)
        noisy = images + torch.randn(images.shape, generator=generator) * sigma[:, None, None, None]
        if layout is not None:
            noisy = noisy.contiguous(memory_format=layout)

        def step():
            with torch.no_grad(), autocast:
                denoiser(noisy, sigma, labels)

    times, first = [], None
    for i in range(job["warmup"] + job["iters"]):
        start = time.perf_counter()
        step()
        first = first or time.perf_counter() - start  # with --compile: the compilation
        if i >= job["warmup"]:
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:  # after timing: counting slows the step
        step()
    result = {"times": times, "first_s": first, "peak_mib": (peak - baseline) / 1024,
              "params": sum(p.numel() for p in net.parameters()),
              "flops": counter.get_total_flops()}
    if job["profile"]:
        from torch.profiler import profile
        with profile() as prof:
            step()
        result["profile"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    return result


def measure(job: dict) -> dict:
    """Run one job in a fresh interpreter, so ru_maxrss is this job's own high-water mark."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(job)],
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"worker failed for {job['config']}/{job['net']}/{job['mode']}:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="images per training step / evaluation")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for both")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat each pair, alternating which network runs first")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, of: "
                        + ", ".join(CONFIGS))
    parser.add_argument("--precisions", default="fp32,bf16",
                        help="comma-separated, of: fp32, bf16 (autocast, as --precision bf16)")
    parser.add_argument("--layout", choices=("default", *LAYOUTS), default="default",
                        help="default: each library as it runs by default (diffusers NCHW; "
                             "genforge NCHW in training, channels-last for sampling as "
                             "genforge.load gives); nchw or channels-last: both networks and "
                             "batches in that layout")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile both raw networks (the first step's time, which "
                             "includes the compilation, is printed)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: batch 16, 1 warm-up, 2 timed iterations, cpu-small only")
    parser.add_argument("--profile", action="store_true",
                        help="also print torch.profiler's top ops for one step of each")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.quick:
        args.batch, args.warmup, args.iters, args.configs = 16, 1, 2, "cpu-small"
    precisions = args.precisions.split(",")
    if not set(precisions) <= {"fp32", "bf16"}:
        raise SystemExit(f"--precisions takes fp32 and bf16, got {args.precisions!r}")

    import torch
    from genforge.training.devices import cpu_has_fast_bf16
    print(f"{cpu_model()}: native bf16 {'yes' if cpu_has_fast_bf16() else 'no (emulated)'}; "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs, threads {args.threads}, batch "
          f"{args.batch}, {args.warmup} warm-up + {args.iters} timed iterations x {args.rounds} "
          f"round(s)")
    print(f"load average before: {os.getloadavg()[0]:.2f} (figures are unreliable when it "
          f"exceeds the CPU count)")
    peaks = {p: measure(dict(config="", net="", mode="gemm", precision=p, threads=args.threads,
                             iters=args.iters))["flops"] for p in precisions}
    print("GEMM peak (1024x1024 matrix product): " + ", ".join(
        f"{p} {peaks[p] / 1e9:.1f} GFLOP/s" for p in precisions) + "\n")

    rows = []
    for name in args.configs.split(","):
        label, preset, channels, side, classes, overrides = CONFIGS[name]
        ours = build_genforge(preset, channels, side, classes, overrides)
        kwargs = match_diffusers(preset, channels, side, classes, ours)
        print(f"{label}: genforge attends at levels {attention_levels(ours)}; diffusers UNet2DModel "
              f"block_out_channels={kwargs['block_out_channels']} layers_per_block="
              f"{kwargs['layers_per_block']} down={kwargs['down_block_types']}")
        for precision in precisions:
            figures = {}
            for mode in ("train", "sample"):
                runs = {"genforge": [], "diffusers": []}
                for r in range(args.rounds):
                    for net in (("genforge", "diffusers") if r % 2 == 0 else ("diffusers", "genforge")):
                        runs[net].append(measure(dict(
                            config=name, net=net, mode=mode, precision=precision, batch=args.batch,
                            threads=args.threads, warmup=args.warmup, iters=args.iters,
                            diffusers_kwargs=kwargs, profile=args.profile, layout=args.layout,
                            compile=args.compile)))
                for net, results in runs.items():
                    median = statistics.median(t for res in results for t in res["times"])
                    figures[net, mode] = dict(
                        speed=args.batch / median if mode == "train" else median * 1000 / args.batch,
                        peak=max(res["peak_mib"] for res in results), params=results[0]["params"],
                        flops=results[0]["flops"], flops_per_s=results[0]["flops"] / median)
                    if args.profile:
                        print(f"\n--- {net} {mode} {precision} ({label}) ---\n{results[0]['profile']}")
                    if args.compile:
                        print(f"{label} {precision} {net} {mode}: first step (compiling) "
                              f"{results[0]['first_s']:.1f} s")
            rows.append((f"{label}, {precision}", precision, figures))

    speedup = TARGET_SPEEDUP[cpu_has_fast_bf16()]
    header = (f"{'configuration':<40}{'figure':<26}{'genforge':>12}{'diffusers':>12}{'gf/df':>8}"
              f"  target")
    print("\n" + header + "\n" + "-" * len(header))
    for label, precision, f in rows:
        g, d = f["genforge", "train"], f["diffusers", "train"]
        gs, ds = f["genforge", "sample"], f["diffusers", "sample"]
        peak = peaks[precision]
        lines = [
            ("parameters", g["params"], d["params"], "{:,.0f}", None),
            ("train images/s", g["speed"], d["speed"], "{:.1f}", lambda r: r >= speedup),
            ("train peak MiB", g["peak"], d["peak"], "{:.0f}", lambda r: r <= 1.0),
            ("train GFLOP/step", g["flops"] / 1e9, d["flops"] / 1e9, "{:.2f}", None),
            ("train % of GEMM peak", 100 * g["flops_per_s"] / peak, 100 * d["flops_per_s"] / peak,
             "{:.1f}", None),
            ("sample ms/eval/image", gs["speed"], ds["speed"], "{:.3f}",
             lambda r: r <= 1 / speedup),
            ("sample peak MiB", gs["peak"], ds["peak"], "{:.0f}", lambda r: r <= 1.0),
            ("sample % of GEMM peak", 100 * gs["flops_per_s"] / peak, 100 * ds["flops_per_s"] / peak,
             "{:.1f}", None),
        ]
        for figure, ours, theirs, fmt, target in lines:
            ratio = ours / theirs
            verdict = "" if target is None else ("met" if target(ratio) else "MISSED")
            print(f"{label:<40}{figure:<26}{fmt.format(ours):>12}{fmt.format(theirs):>12}"
                  f"{ratio:>8.2f}  {verdict}")
            label = ""
    print(f"\ntargets: train images/s ratio >= {speedup}, ms/eval ratio <= "
          f"{1 / speedup:.2f}, peak memory ratio <= 1.00")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
