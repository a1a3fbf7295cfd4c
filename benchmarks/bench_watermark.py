"""genforge's invisible watermark beside invisible-watermark's dwtDct and dwtDctSvd (run by hand).

    pip install invisible-watermark scikit-image   # benchmark-only peers, not genforge dependencies
    python benchmarks/bench_watermark.py --model runs/fm30/model --out watermark.json
    python benchmarks/bench_watermark.py --quick     # 10 + 10 images, 2 keys: a smoke run
    python benchmarks/bench_watermark.py --stages sharing --share-n 50 --share-keys 10 \
        --model32 runs/fm32/model --model64 runs/fm64/model   # display copies only

Images (the same for every method, 256x256 RGB):
  generated  samples 0..n-1 of a genforge model (Fashion-MNIST, 28x28 grey), upscaled with Lanczos
             and repeated into three channels;
  real       256x256 crops at seeded random places of the photographs bundled with scikit-image
             (skimage.data; grey ones repeated into three channels).
Each image gets a random 32-bit payload; each method embeds it, the transformations below are
applied, and each method decodes. Bit accuracy counts the 32 payload bits; genforge discards a
payload that fails its CRC, which counts as 16 of 32 (chance). "exact" is the share of images whose
32 bits all came back (genforge: found with the right payload). PSNR is over the RGB pixels.
False positives: genforge's `found` on unmarked images, under several keys; the peers have no
detection decision, so theirs is the share of unmarked images whose decoded bits match the payload
in at least 29 of 32 places (1.2e-6 if the bits were random).
invisible-watermark refuses images under 256x256 pixels of area; after a crop its decoding
classes are called directly (imwatermark.maxDct / imwatermark.dwtDctSvd), past that guard.

Sharing stage (issue 26): display copies, as `genforge generate --display-size` makes them
(provenance.marking.upscale, nearest and Lanczos), of n samples of a 32x32 and a 64x64 genforge
model; each method embeds a random payload in the same copy, then each pipeline of PIPELINES
(the ways people share pictures) runs with the same seeded randomness for every method, and each
decodes. False positives: unmarked display copies after each pipeline, read by genforge's
detect under several keys (the resampled views it makes are key-independent, so they are made
once per image and read under each key: the same answers as calling detect per key).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from genforge.provenance import watermark  # noqa: E402

SIZE = 256
PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field",
          "immunohistochemistry", "coins", "moon", "grass", "gravel", "brick", "clock", "page",
          "text", "retina"]
PEER_THRESHOLD = 29  # bits of 32 for a peer "detection"


# ----- images ------------------------------------------------------------------------------------

def generated_images(model: str, n: int) -> tuple[list[np.ndarray], str]:
    """n samples of a genforge model, Lanczos-upscaled to SIZE and made RGB."""
    import torch
    import genforge
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    samples = genforge.load(model, device="cpu").generate(n, seed=0).numpy()
    out = []
    for s in samples:
        grey = s[0] if s.shape[0] == 1 else s.transpose(1, 2, 0)
        big = np.asarray(Image.fromarray(grey).resize((SIZE, SIZE), Image.LANCZOS))
        out.append(np.stack([big] * 3, -1) if big.ndim == 2 else big)
    shape = "x".join(map(str, samples.shape[1:]))
    return out, f"{n} samples (seeds 0..{n - 1}) of {model} ({shape}), Lanczos-upscaled to {SIZE}"


def real_images(n: int, seed: int = 0) -> tuple[list[np.ndarray], str]:
    """n SIZE x SIZE crops of scikit-image's bundled photographs, cycling through them."""
    import skimage
    import skimage.data as data
    sources = []
    for name in PHOTOS:
        try:
            image = getattr(data, name)()
        except Exception:  # a photo that would need a download: skip it
            continue
        if image.dtype == np.uint8 and min(image.shape[:2]) >= SIZE:
            sources.append((name, np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3]))
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        _, image = sources[i % len(sources)]
        y = rng.integers(0, image.shape[0] - SIZE + 1)
        x = rng.integers(0, image.shape[1] - SIZE + 1)
        out.append(np.ascontiguousarray(image[y:y + SIZE, x:x + SIZE]))
    names = ", ".join(name for name, _ in sources)
    return out, (f"{n} crops of {SIZE}x{SIZE} at seeded random places from scikit-image "
                 f"{skimage.__version__}'s bundled photographs: {names}")


# ----- transformations ---------------------------------------------------------------------------

def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality, subsampling=2)  # 4:2:0
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def half_and_back(image: np.ndarray, resample: int) -> np.ndarray:
    h, w = image.shape[:2]
    small = Image.fromarray(image).resize((w // 2, h // 2), resample)
    return np.asarray(small.resize((w, h), resample))


def crop(image: np.ndarray, where: str) -> np.ndarray:
    """Remove 10% of the area: keep a square of side sqrt(0.9) at the bottom right or the centre."""
    h = image.shape[0]
    k = int(round(h * math.sqrt(0.9)))
    o = h - k if where == "corner" else (h - k) // 2
    return image[o:o + k, o:o + k]


def brightness(image: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(np.rint(image * factor), 0, 255).astype(np.uint8)


TRANSFORMS = {
    "none": lambda x: x,
    "jpeg75": lambda x: jpeg(x, 75),
    "jpeg50": lambda x: jpeg(x, 50),
    "half-bicubic": lambda x: half_and_back(x, Image.BICUBIC),
    "half-lanczos": lambda x: half_and_back(x, Image.LANCZOS),
    "crop-corner": lambda x: crop(x, "corner"),
    "crop-centre": lambda x: crop(x, "centre"),
    "bright+10%": lambda x: brightness(x, 1.1),
    "bright-10%": lambda x: brightness(x, 0.9),
}


# ----- methods: embed(rgb, payload) -> rgb, decode(rgb) -> 32 bits or None -----------------------

def bits_of(payload: int) -> np.ndarray:
    return np.array([(payload >> (31 - i)) & 1 for i in range(32)], dtype=np.uint8)


class Genforge:
    name = "genforge"

    def __init__(self, key: int = watermark.DEFAULT_KEY):
        self.key = key

    def embed(self, rgb: np.ndarray, payload: int) -> np.ndarray:
        return watermark.embed(rgb, payload, key=self.key)

    def decode(self, rgb: np.ndarray) -> np.ndarray | None:
        found = watermark.detect(rgb, key=self.key)
        return bits_of(found.payload) if found.found else None


class Peer:
    """invisible-watermark's dwtDct or dwtDctSvd (BGR in and out, as the package expects)."""

    def __init__(self, method: str):
        self.name = self.method = method

    def embed(self, rgb: np.ndarray, payload: int) -> np.ndarray:
        from imwatermark import WatermarkEncoder
        encoder = WatermarkEncoder()
        encoder.set_watermark("bits", bits_of(payload).tolist())
        return encoder.encode(np.ascontiguousarray(rgb[..., ::-1]), self.method)[..., ::-1]

    def decode(self, rgb: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        if bgr.shape[0] * bgr.shape[1] >= 256 * 256:
            from imwatermark import WatermarkDecoder
            return np.asarray(WatermarkDecoder("bits", 32).decode(bgr, self.method), dtype=np.uint8)
        # Past the package's size guard (a 10% crop of 256x256 is under it).
        if self.method == "dwtDct":
            from imwatermark.maxDct import EmbedMaxDct as Codec
        else:
            from imwatermark.dwtDctSvd import EmbedDwtDctSvd as Codec
        return np.asarray(Codec(watermarks=[], wmLen=32).decode(bgr), dtype=np.uint8)


# ----- measurements ------------------------------------------------------------------------------

def accuracy(decoded: np.ndarray | None, payload: int) -> tuple[float, bool]:
    """Share of the 32 payload bits right (None: chance) and whether all are."""
    if decoded is None:
        return 0.5, False
    right = int(np.sum(decoded == bits_of(payload)))
    return right / 32, right == 32


def robustness(method, images: list[np.ndarray], payloads: list[int]) -> dict:
    """Bit accuracy and exact share per transformation, PSNR, and mean times."""
    acc = {t: [] for t in TRANSFORMS}
    exact = {t: 0 for t in TRANSFORMS}
    psnrs, t_embed, t_decode = [], 0.0, 0.0
    for image, payload in zip(images, payloads):
        start = time.perf_counter()
        marked = method.embed(image, payload)
        t_embed += time.perf_counter() - start
        psnrs.append(watermark.psnr(image, marked))
        for name, transform in TRANSFORMS.items():
            attacked = transform(marked)
            start = time.perf_counter()
            decoded = method.decode(attacked)
            t_decode += time.perf_counter() - start
            a, e = accuracy(decoded, payload)
            acc[name].append(a)
            exact[name] += e
    n = len(images)
    return {"bit_accuracy": {t: float(np.mean(v)) for t, v in acc.items()},
            "exact": {t: exact[t] / n for t in TRANSFORMS},
            "psnr_mean": float(np.mean(psnrs)), "psnr_min": float(np.min(psnrs)),
            "embed_ms": 1000 * t_embed / n, "decode_ms": 1000 * t_decode / (n * len(TRANSFORMS))}


def false_positives(method, images: list[np.ndarray], payloads: list[int], keys: list[int]) -> dict:
    """genforge: found on unmarked images under each key; peers: >= PEER_THRESHOLD bits match."""
    hits, trials, p_sync = 0, 0, []
    if isinstance(method, Genforge):
        for key in keys:
            for image in images:
                result = watermark.detect(image, key=key)
                hits += result.found
                trials += 1
                p_sync.append(result.p_sync)
        p = np.array(p_sync)
        calibration = {f"p_sync<={a}": float(np.mean(p <= a)) for a in (0.01, 0.1, 0.5)}
        return {"trials": trials, "false_positives": hits, "rate": hits / trials,
                "upper95": 1 - 0.05 ** (1 / trials) if hits == 0 else None, **calibration}
    agree = []
    for image, payload in zip(images, payloads):
        a, _ = accuracy(method.decode(image), payload)
        agree.append(a)
        hits += a * 32 >= PEER_THRESHOLD
    return {"trials": len(images), "false_positives": hits, "rate": hits / len(images),
            "bit_accuracy_unmarked": float(np.mean(agree))}


def small_sizes(methods, generated: list[np.ndarray], real: list[np.ndarray], n: int) -> dict:
    """Which methods can carry the payload at the sizes genforge produces (28x28 grey, 32x32
    RGB), and how well above: the 256x256 images Lanczos-resized; generated 28x28 stay grey."""
    out = {}
    rng = np.random.default_rng(1)
    for size in (28, 32, 64, 128, 192):
        row = {}
        for method in methods:
            cells = {}
            for label, images in (("generated", generated), ("real", real)):
                picked = [np.asarray(Image.fromarray(x).resize((size, size), Image.LANCZOS))
                          for x in images[:n]]
                if size == 28 and label == "generated":
                    picked = [x[..., 0] if isinstance(method, Genforge) else x for x in picked]
                payloads = [int(p) for p in rng.integers(0, 2 ** 32, len(picked))]
                try:
                    marked = [method.embed(x, p) for x, p in zip(picked, payloads)]
                except Exception as error:  # the method refuses this size
                    cells[label] = f"refuses ({type(error).__name__}: {error})"
                    continue
                ok = {}
                for t in ("none", "jpeg75"):
                    got = [accuracy(method.decode(TRANSFORMS[t](m)), p)[1]
                           for m, p in zip(marked, payloads)]
                    ok[t] = float(np.mean(got))
                cells[label] = ok
            row[method.name] = cells
        out[str(size)] = row
    return out


# ----- sharing: display copies of small generated images through real sharing pipelines -------

def _jpeg_bytes(image: np.ndarray, quality: int, icc: bytes | None = None) -> np.ndarray:
    buffer = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    Image.fromarray(image).save(buffer, "JPEG", quality=quality, subsampling=2, **extra)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def share_1080(image: np.ndarray, rng) -> np.ndarray:
    """Resized to 1080 px wide (bicubic, as browsers and upload pipelines do), then JPEG 85."""
    h, w = image.shape[:2]
    big = Image.fromarray(image).resize((1080, round(h * 1080 / w)), Image.BICUBIC)
    return _jpeg_bytes(np.asarray(big), 85)


def share_crop(image: np.ndarray, rng) -> np.ndarray:
    """5% of the width and of the height cut off, split at a seeded random place between the
    two sides, then JPEG 75."""
    h, w = image.shape[:2]
    cut_h, cut_w = round(0.05 * h), round(0.05 * w)
    top, left = int(rng.integers(0, cut_h + 1)), int(rng.integers(0, cut_w + 1))
    return _jpeg_bytes(np.ascontiguousarray(image[top:top + h - cut_h, left:left + w - cut_w]), 75)


def share_screenshot(image: np.ndarray, rng) -> np.ndarray:
    """A screenshot-like re-encode: colour-managed sRGB -> CIELAB (8 bits) -> sRGB, saved as
    JPEG 90 with an embedded sRGB ICC profile."""
    from PIL import ImageCms
    srgb, lab = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
    to_lab = ImageCms.buildTransform(srgb, lab, "RGB", "LAB")
    to_rgb = ImageCms.buildTransform(lab, srgb, "LAB", "RGB")
    shown = ImageCms.applyTransform(ImageCms.applyTransform(Image.fromarray(image), to_lab), to_rgb)
    return _jpeg_bytes(np.asarray(shown), 90, ImageCms.ImageCmsProfile(srgb).tobytes())


def share_rotate(image: np.ndarray, rng) -> np.ndarray:
    """Turned by a seeded 1-2 degrees either way (bicubic, black corners), kept as PNG."""
    angle = float(rng.uniform(1.0, 2.0)) * (1 if rng.random() < 0.5 else -1)
    return np.asarray(Image.fromarray(image).rotate(angle, Image.BICUBIC))


def share_jpeg_twice(image: np.ndarray, rng) -> np.ndarray:
    """Two successive re-encodes, JPEG 85 then JPEG 75 (uploaded, then shared on)."""
    return _jpeg_bytes(_jpeg_bytes(image, 85), 75)


PIPELINES = {"none": lambda x, rng: x, "1080 wide + JPEG 85": share_1080,
             "crop 5% + JPEG 75": share_crop, "screenshot (JPEG 90, sRGB ICC)": share_screenshot,
             "rotate 1-2 deg": share_rotate, "JPEG 85 then 75": share_jpeg_twice}


def display_sets(models: dict[int, str], n: int, display_size: int) -> dict[str, list[np.ndarray]]:
    """Unmarked display copies of n samples of each model, nearest and Lanczos, RGB HxWx3,
    made by genforge's own upscaling (provenance.marking.upscale)."""
    import torch
    import genforge
    from genforge.provenance import marking
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    sets = {}
    for size, model in models.items():
        samples = genforge.load(model, device="cpu").generate(n, seed=0, watermark=False)
        assert tuple(samples.shape[-2:]) == (size, size), f"{model} makes {samples.shape}"
        for resample in marking.RESAMPLES:
            big = marking.upscale(samples, display_size, resample).numpy().transpose(0, 2, 3, 1)
            sets[f"{size}x{size} -> {big.shape[1]}px {resample}"] = [np.ascontiguousarray(
                np.repeat(x, 3, -1) if x.shape[-1] == 1 else x[..., :3]) for x in big]
    return sets


def _sharing_task(task: tuple) -> dict:
    """One display copy: each method embeds the payload, every pipeline runs, each decodes."""
    label, index, image, payload = task
    rng_seed = [index, sum(map(ord, label))]
    row = {"set": label, "psnr": {}, "exact": {}}
    for method in (Genforge(), Peer("dwtDct"), Peer("dwtDctSvd")):
        marked = method.embed(image, payload)
        row["psnr"][method.name] = watermark.psnr(image, marked)
        for name, pipeline in PIPELINES.items():
            shared = pipeline(marked, np.random.default_rng(rng_seed))  # same for every method
            row["exact"][f"{method.name}|{name}"] = accuracy(method.decode(shared), payload)[1]
    return row


def _unmarked_task(task: tuple) -> list[bool]:
    """One unmarked display copy through one pipeline, read under every key: found or not."""
    image, pipeline, seed, keys = task
    shared = PIPELINES[pipeline](image, np.random.default_rng(seed))
    views = watermark.resync.views(watermark._luma(shared))  # what detect() makes, once
    return [watermark.read_views(views, key=key).found for key in keys]


def sharing(models: dict[int, str], n: int, display_size: int, keys: int, workers: int) -> dict:
    """Exact payload per set, method and pipeline; PSNR; false positives on unmarked copies."""
    from multiprocessing import Pool
    sets = display_sets(models, n, display_size)
    rng = np.random.default_rng(2)
    tasks = [(label, i, image, int(rng.integers(0, 2 ** 32)))
             for label, images in sets.items() for i, image in enumerate(images)]
    key_list = [watermark.DEFAULT_KEY] + [int(k) for k in rng.integers(0, 2 ** 63, keys - 1)]
    unmarked = [(image, name, i, key_list) for label, images in sets.items()
                for i, image in enumerate(images) for name in PIPELINES if name != "none"]
    with Pool(workers) as pool:
        rows = pool.map(_sharing_task, tasks, chunksize=4)
        found = pool.map(_unmarked_task, unmarked, chunksize=4)
    out: dict = {"display_size": display_size, "sets": {}}
    for label in sets:
        mine = [r for r in rows if r["set"] == label]
        methods = list(mine[0]["psnr"])
        out["sets"][label] = {m: {
            "psnr_mean": float(np.mean([r["psnr"][m] for r in mine])),
            "psnr_min": float(np.min([r["psnr"][m] for r in mine])),
            "exact": {p: float(np.mean([r["exact"][f"{m}|{p}"] for r in mine]))
                      for p in PIPELINES}} for m in methods}
    hits = int(sum(map(sum, found)))
    trials = sum(map(len, found))
    out["false_positives"] = {"trials": trials, "found": hits, "images": len(unmarked),
                              "keys": keys, "upper95": 1 - 0.05 ** (1 / trials) if not hits else None}
    return out


def sharing_table(result: dict) -> str:
    names = list(PIPELINES)
    lines = ["| display copies | method | " + " | ".join(names) + " | PSNR mean (min) |",
             "|---|---|" + "---|" * (len(names) + 1)]
    for label, methods in result["sets"].items():
        for name, r in methods.items():
            cells = " | ".join(f"{r['exact'][p]:.2f}" for p in names)
            lines.append(f"| {label} | {name} | {cells} | {r['psnr_mean']:.1f} ({r['psnr_min']:.1f}) |")
    return "\n".join(lines)


# ----- report ------------------------------------------------------------------------------------

def table(results: dict, key: str, fmt: str) -> str:
    names = list(TRANSFORMS)
    lines = ["| set | method | " + " | ".join(names) + " | PSNR mean (min) |",
             "|---|---|" + "---|" * (len(names) + 1)]
    for label, methods in results.items():
        for name, r in methods.items():
            cells = " | ".join(format(r[key][t], fmt) for t in names)
            quality = f"{r['psnr_mean']:.1f} ({r['psnr_min']:.1f})"
            lines.append(f"| {label} | {name} | {cells} | {quality} |")
    return "\n".join(lines)


def size_table(sizes: dict) -> str:
    names = list(next(iter(sizes.values())))
    lines = ["| size | " + " | ".join(f"{m} generated | {m} real" for m in names) + " |",
             "|---|" + "---|" * (2 * len(names))]
    for size, row in sizes.items():
        cells = []
        for name in names:
            for label in ("generated", "real"):
                c = row[name][label]
                cells.append("refuses" if isinstance(c, str)
                             else f"{c['none']:.2f} / {c['jpeg75']:.2f}")
        lines.append(f"| {size}x{size} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="runs/fm30/model", help="genforge model folder")
    parser.add_argument("-n", type=int, default=100, help="images per set")
    parser.add_argument("--keys", type=int, default=10,
                        help="keys for genforge's false-positive trials")
    parser.add_argument("--small", type=int, default=20, help="images per set for the size table")
    parser.add_argument("--out", default="bench_watermark.json")
    parser.add_argument("--quick", action="store_true", help="10 images per set, 2 keys, 5 small")
    parser.add_argument("--stages", default="classic,sharing",
                        help="classic (256x256 images, the transformations above) and/or sharing "
                             "(display copies of small generated images through sharing pipelines)")
    parser.add_argument("--model32", default="runs/fm32/model",
                        help="a genforge model of 32x32 images (sharing stage)")
    parser.add_argument("--model64", default="runs/fm64/model",
                        help="a genforge model of 64x64 images (sharing stage)")
    parser.add_argument("--display-size", type=int, default=256,
                        help="display copies' shorter side (sharing stage)")
    parser.add_argument("--share-n", type=int, default=100,
                        help="generated images per model (sharing stage)")
    parser.add_argument("--share-keys", type=int, default=5,
                        help="keys per unmarked image (sharing stage): 50 images per model x 2 "
                             "models x 2 resamplers x 5 pipelines x 10 keys = 10,000 trials")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        args.n, args.keys, args.small, args.share_n, args.share_keys = 10, 2, 5, 6, 2
    stages = set(args.stages.split(","))
    started = time.time()
    record = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_average": os.getloadavg()},
              "versions": {p: metadata.version(p) for p in
                           ("numpy", "pillow", "invisible-watermark", "scikit-image")},
              "genforge": {"method": watermark.METHOD, "version": watermark.VERSION,
                           "strength": watermark.DEFAULT_STRENGTH,
                           "min_size": watermark.min_size()}}
    if "sharing" in stages:
        shared = sharing({32: args.model32, 64: args.model64}, args.share_n, args.display_size,
                         args.share_keys, args.workers)
        record["sharing"] = shared
        print(f"\nDisplay copies ({args.display_size} px, {args.share_n} per set) after sharing "
              "pipelines: share with the exact 32-bit payload")
        print(sharing_table(shared))
        print(f"False positives (genforge, unmarked display copies after each pipeline): "
              f"{shared['false_positives']}", flush=True)
    if "classic" in stages:
        record.update(classic(args))
    record["seconds"] = time.time() - started
    Path(args.out).write_text(json.dumps(record, indent=1, default=str))
    print(f"\nwrote {args.out} ({record['seconds']:.0f} s)")


def classic(args) -> dict:
    """The 256x256 robustness, false-positive and size tables."""
    generated, generated_source = generated_images(args.model, args.n)
    real, real_source = real_images(args.n)
    print(f"generated: {generated_source}\nreal: {real_source}", flush=True)
    rng = np.random.default_rng(0)
    methods = [Genforge(), Peer("dwtDct"), Peer("dwtDctSvd")]
    results, fpr = {}, {}
    for label, images in (("generated", generated), ("real", real)):
        payloads = [int(p) for p in rng.integers(0, 2 ** 32, len(images))]
        results[label], fpr[label] = {}, {}
        for method in methods:
            results[label][method.name] = robustness(method, images, payloads)
            keys = [watermark.DEFAULT_KEY] + [int(k)
                                              for k in rng.integers(0, 2 ** 63, args.keys - 1)]
            fpr[label][method.name] = false_positives(method, images, payloads, keys)
            r = results[label][method.name]
            print(f"{label:9s} {method.name:9s} PSNR {r['psnr_mean']:.1f}  "
                  + " ".join(f"{t} {v:.3f}" for t, v in r["bit_accuracy"].items()), flush=True)
    sizes = small_sizes(methods, generated, real, args.small)

    print("\nBit accuracy (32-bit payloads; genforge's rejected payloads count as 0.5):")
    print(table(results, "bit_accuracy", ".3f"))
    print("\nExact payload (all 32 bits; genforge: found with the right payload):")
    print(table(results, "exact", ".2f"))
    print("\nFalse positives on unmarked images:")
    for label, methods_fpr in fpr.items():
        for name, f in methods_fpr.items():
            print(f"  {label:9s} {name:9s} {f}")
    print("\nTimes per 256x256 image (ms):")
    for label, methods_r in results.items():
        for name, r in methods_r.items():
            print(f"  {label:9s} {name:9s} embed {r['embed_ms']:.1f}  decode {r['decode_ms']:.1f}")
    print(f"\nSmall sizes ({args.small} images per set; share exact, no transformation / JPEG 75):")
    print(size_table(sizes))
    refusals = {c for row in sizes.values() for cells in row.values() for c in cells.values()
                if isinstance(c, str)}
    print("\n".join(f"  {r}" for r in sorted(refusals)))

    return {"images": {"generated": generated_source, "real": real_source},
            "results": results, "false_positives": fpr, "small_sizes": sizes}


if __name__ == "__main__":
    main()
