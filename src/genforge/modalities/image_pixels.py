"""One decoded image to the array a model reads: channels (grey, RGB, RGBA; 16-bit grey scaled)
and a square of the chosen resolution (crop or pad), never building a large intermediate."""
from __future__ import annotations

import numpy as np
from PIL import Image

MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_GREY_MODES = {"1", "L", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_WIDE_GREY_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}  # 16-bit grey PNGs open as these
MAX_ASPECT = 16  # longer side over shorter: past it a fitted square keeps 1/16 of the picture or less


def natural_channels(img: Image.Image) -> int:
    """1 for grey, 4 when the image has any alpha (an alpha band or palette transparency), else 3."""
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        return 4
    return 1 if img.mode in _GREY_MODES else 3


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """Convert to L, RGB or RGBA; 16-bit grey is scaled to 8 bits (Pillow's own convert clips it)."""
    if img.mode in _WIDE_GREY_MODES:
        wide = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8))
    elif "transparency" in img.info and img.mode != "RGBA":
        img = img.convert("RGBA")  # resolves palette/tRNS transparency once, without Pillow's warning
    target = MODES[channels]
    return img if img.mode == target else img.convert(target)


def fit_square(img: Image.Image, resolution: int, fit: str) -> Image.Image:
    """Make img resolution x resolution: "crop" fills then centre-crops, "pad" fits then pads with black.

    Nothing much larger than the output is made: crop's intermediate is at most MAX_ASPECT times
    the output (a 1,000,000x1 strip once became a 48,000,000x48 image before its crop)."""
    w, h = img.size
    if (w, h) == (resolution, resolution):
        return img
    if fit == "crop":
        scale = resolution / min(w, h)
        size = (max(resolution, round(w * scale)), max(resolution, round(h * scale)))
        left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
        if size[0] * size[1] > MAX_ASPECT * resolution ** 2:
            # Resample only the box of the source that lands in the square. Not the usual path:
            # Pillow then rounds between its two passes differently, and pixels would change.
            sx, sy = w / size[0], h / size[1]
            box = (left * sx, top * sy, (left + resolution) * sx, (top + resolution) * sy)
            return img.resize((resolution, resolution), Image.Resampling.LANCZOS, box=box)
    else:
        scale = resolution / max(w, h)
        size = (min(resolution, max(1, round(w * scale))), min(resolution, max(1, round(h * scale))))
    # Lanczos is antialiased when shrinking; Pillow premultiplies alpha when resizing RGBA.
    img = img.resize(size, Image.Resampling.LANCZOS)
    if fit == "crop":
        return img.crop((left, top, left + resolution, top + resolution))
    canvas = Image.new(img.mode, (resolution, resolution), 0)  # 0: black, transparent black for RGBA
    canvas.paste(img, ((resolution - size[0]) // 2, (resolution - size[1]) // 2))
    return canvas


def to_array(img: Image.Image, channels: int, resolution: int, fit: str) -> np.ndarray:
    """One image as uint8 [C, resolution, resolution]."""
    arr = np.asarray(fit_square(to_channels(img, channels), resolution, fit), dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
