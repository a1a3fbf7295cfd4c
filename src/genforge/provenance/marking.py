"""Marking generated images with the invisible watermark that names the model: the payload is
the first 32 bits of the model's weights sha256 (so `genforge detect` names the model), images
below the watermark's minimum size are left as they are with the reason recorded. Pixel maths
only (provenance.watermark); the image content kind uses it, signing does not come in here."""
from __future__ import annotations

import numpy as np
import torch

from . import watermark

OPTED_OUT = "opted out (--no-watermark)"


def payload_for(model_sha256: str) -> int:
    """The 32-bit watermark payload naming a model: the first 8 hex digits of its weights sha256."""
    return int(model_sha256[:watermark.PAYLOAD_BITS // 4], 16)


def payload_hex(payload: int) -> str:
    return f"{payload:0{watermark.PAYLOAD_BITS // 4}x}"


def mark_images(items: torch.Tensor, model_sha256: str | None, *, enabled: bool = True,
                signed: bool = True) -> tuple[torch.Tensor, dict]:
    """Watermark uint8 images [N, C, H, W]: the marked items and the record of what was done
    (signed: whether the files will carry a C2PA manifest, which the record then points to)."""
    if not enabled:
        return items, {"applied": False, "reason": OPTED_OUT}
    if not model_sha256:
        return items, {"applied": False, "reason": "the model has no weights hash to carry"}
    h, w = items.shape[-2:]
    if not watermark.fits(h, w):
        low_h, low_w = watermark.min_size()
        rests = "the C2PA manifest and the generation log" if signed else "the generation log"
        return items, {"applied": False,
                       "reason": f"{h}x{w} images are below the watermark's minimum of "
                                 f"{low_h}x{low_w}; provenance rests on {rests}"}
    payload = payload_for(model_sha256)
    marked = torch.stack([_mark_one(item, payload) for item in items]) if len(items) else items
    return marked, {"applied": True, "method": watermark.METHOD, "version": watermark.VERSION,
                    "payload": payload_hex(payload), "key": "default"}


def _mark_one(item: torch.Tensor, payload: int) -> torch.Tensor:
    """One [C, H, W] uint8 image through watermark.embed, which takes HxW or HxWxC arrays."""
    array = item.numpy()
    array = array[0] if array.shape[0] == 1 else np.ascontiguousarray(array.transpose(1, 2, 0))
    marked = watermark.embed(array, payload)
    marked = marked[None] if marked.ndim == 2 else marked.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(marked))


RESAMPLES = ("nearest", "lanczos")
# Nearest-neighbour copies make each pixel a block of at least this many display pixels a side.
# With 4x4 blocks of a textured 64x64 sample nearly every display pixel sits beside a block
# edge, which drowns the mark: 0.72 of 50 display copies kept it after a resize to 1080 px and
# 0.54 after a 1-2 degree turn; with 8x8 blocks 12 of 12 did, with 0-3 coded bits wrong
# (benchmarks/README.md, bench_watermark.py's sharing stage).
MIN_BLOCK = 8


def upscale(items: torch.Tensor, size: int, resample: str) -> torch.Tensor:
    """uint8 images [N, C, H, W] upscaled for display, the shorter side at least `size`:
    nearest by the smallest whole factor, at least MIN_BLOCK, that reaches it (each pixel a
    square block: pixel art stays crisp), or Lanczos to exactly `size` on the shorter side
    (aspect kept)."""
    from PIL import Image
    if resample not in RESAMPLES:
        raise ValueError(f"resample must be one of {RESAMPLES}, got {resample!r}")
    h, w = items.shape[-2:]
    if resample == "nearest":
        factor = max(MIN_BLOCK, -(-size // min(h, w)))
        return items.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
    scale = size / min(h, w)
    shape = (max(size, round(w * scale)), max(size, round(h * scale)))  # (width, height)
    out = []
    for item in items.numpy():
        planes = [Image.fromarray(plane).resize(shape, Image.Resampling.LANCZOS) for plane in item]
        out.append(np.stack([np.asarray(p) for p in planes]))
    return torch.from_numpy(np.stack(out)) if out else items
