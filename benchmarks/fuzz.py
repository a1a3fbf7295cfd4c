"""Fuzzing the readers of user files: every mutated input must load, fail with one genforge error
line, or be skipped with a reason; never crash, hang or take large memory (issue 19).

    PYTHONPATH=src python benchmarks/fuzz.py --minutes 5                  # each reader, 5 minutes
    PYTHONPATH=src python benchmarks/fuzz.py --minutes 1 --reader xsb --reader midi
    PYTHONPATH=src python benchmarks/fuzz.py --reader humdrum --case 25   # replay one CI case
    PYTHONPATH=src python benchmarks/fuzz.py --reader xsb --replay runs/fuzz/xsb-crash-3.xsb

Inputs are mutations of small seeds made here (images drawn with numpy, SATB music written with
genforge's own writers, hand-made levels, the legends and an exported model config from
tests/fixtures): bit flips, truncations, insertions, interesting numbers (huge, negative, unicode
digits), deep nesting, repeated lines, and format-aware edits (PNG/JPEG/BMP headers with their
checksums fixed, MIDI division and delta times, JSON values, safetensors and IDX headers). Each
input runs in a forked child limited to --seconds of wall time and --memory MiB of address space
above its own start, and ends as one of:

    loaded    the reader returned it
    error     a genforge error (GenforgeError) of one line naming the file or folder
    skipped   the reader left it out and said why (its report)
    crash     any other exception, a multi-line error, an error that names no file, a signal
    hang      still running after --seconds, or after the reader's own budget plus 2 s where it
              has one (music: music.corpus.parse_seconds, which grows with the file's size)

Crashes are grouped into classes by exception type and the innermost genforge line; a few inputs
of each class, and of hangs, are saved under --out with their recipes. The table gives per reader
the inputs tried, the outcomes, the inputs slower than --seconds but within the reader's budget,
the slowest input, and memory: the largest peak RSS of one child (pages it shares with this
process count once touched), its growth over the child's RSS at its start, and how many inputs
grew a reader by 1 GiB or more. tests/test_fuzz.py runs the first cases of each reader in CI.
"""
from __future__ import annotations

import argparse
import gzip
import io as _io
import json
import os
import random
import re
import resource
import select
import signal
import struct
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
MAX_INPUT = 4 << 20  # bytes: mutations that grow an input past this are cut back


# ---- seeds ---------------------------------------------------------------------------------

def _image_bytes(array: np.ndarray, mode: str, fmt: str, **options) -> bytes:
    from PIL import Image
    buffer = _io.BytesIO()
    img = Image.fromarray(array).convert(mode) if mode != "I;16" else Image.fromarray(array)
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def image_seeds() -> list[tuple[str, bytes]]:
    """Small images of each format and mode, and thin strips (the fit_square blow-up)."""
    from PIL import Image
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (14, 9, 4), dtype=np.uint8)
    grey = rng.integers(0, 256, (10, 12), dtype=np.uint8)
    seeds = [("rgb.png", _image_bytes(rgb, "RGB", "PNG")),
             ("rgba.png", _image_bytes(rgba, "RGBA", "PNG")),
             ("grey.png", _image_bytes(grey, "L", "PNG")),
             ("wide.png", _image_bytes((grey.astype(np.uint16) * 257).astype(np.uint16), "I;16", "PNG")),
             ("rgb.jpg", _image_bytes(rgb, "RGB", "JPEG", quality=80)),
             ("grey.jpg", _image_bytes(grey, "L", "JPEG")),
             ("rgb.bmp", _image_bytes(rgb, "RGB", "BMP")),
             ("grey.bmp", _image_bytes(grey, "L", "BMP")),
             ("rgb.webp", _image_bytes(rgb, "RGB", "WEBP", quality=80)),
             ("rgba.webp", _image_bytes(rgba, "RGBA", "WEBP", lossless=True))]
    palette = Image.fromarray(grey // 64).convert("P")
    buffer = _io.BytesIO()
    palette.save(buffer, format="PNG", transparency=0)
    seeds.append(("palette.png", buffer.getvalue()))
    for name, size in (("strip.png", (1_000_000, 1)), ("column.png", (1, 200_000))):
        buffer = _io.BytesIO()
        Image.new("L", size, 128).save(buffer, format="PNG", optimize=True)
        seeds.append((name, buffer.getvalue()))
    return seeds


def _satb_item(bars: int = 2) -> np.ndarray:
    from genforge.music import representation as rep
    notes = []
    for v, base in enumerate((72, 65, 57, 48)):
        for k in range(bars * 4):
            notes.append(rep.Note(base + (k * (v + 1)) % 5, k * 4, k * 4 + 4, v))
    return rep.notes_to_satb(notes, bars * 16)


def midi_seeds() -> list[tuple[str, bytes]]:
    from genforge.music import writing
    return [("satb.mid", writing.midi_bytes(_satb_item())),
            ("melody.mid", (FIXTURES / "music" / "melody.mid").read_bytes())]


def musicxml_seeds() -> list[tuple[str, bytes]]:
    from genforge.music import writing
    text = writing.musicxml_bytes(_satb_item()).decode("utf-8")
    text = re.sub(r"<encoding-date>[^<]*</encoding-date>", "", text)  # the same bytes every day
    return [("satb.musicxml", text.encode("utf-8")),
            ("five_four.musicxml", (FIXTURES / "music" / "bad" / "five_four.musicxml").read_bytes())]


HUMDRUM = """!!!COM: genforge fuzz seed
**kern\t**kern\t**kern\t**kern
*M4/4\t*M4/4\t*M4/4\t*M4/4
*k[b-]\t*k[b-]\t*k[b-]\t*k[b-]
=1\t=1\t=1\t=1
4F\t4c\t4f\t4a
8G 8A\t4c\t4e\t4cc
4B-\t4d\t4f\t4bb-
4C\t4c\t4e\t4g
=2\t=2\t=2\t=2
2F;\t2c;\t2f;\t2aa;
2r\t2r\t2r\t2r
==\t==\t==\t==
*-\t*-\t*-\t*-
"""


def humdrum_seeds() -> list[tuple[str, bytes]]:
    return [("chorale.krn", HUMDRUM.encode()),
            ("cadence.krn", (FIXTURES / "music" / "good" / "cadence.krn").read_bytes())]


SOKOBAN_EXTRA = """; A run-length solution and metadata
####
# .#
#  ###
#*@  #
#  $ #
#  ###
####
Title: Run Lengths
Author: genforge fuzz
Solution: 2(dL)ur3(lu)
"""


def xsb_seeds() -> list[tuple[str, bytes]]:
    return [("tiny.xsb", (FIXTURES / "levels" / "sokoban" / "tiny.xsb").read_bytes()),
            ("runs.xsb", SOKOBAN_EXTRA.encode())]


def _lode_rows(gold: int) -> list[str]:
    from genforge.levels.formats import KGR_HEIGHT, KGR_WIDTH
    rows = ["." * KGR_WIDTH for _ in range(KGR_HEIGHT - 1)] + ["B" * KGR_WIDTH]
    rows[KGR_HEIGHT - 2] = "M" + "." * gold + "G" * 2 + "." * (KGR_WIDTH - 3 - gold)
    rows[KGR_HEIGHT - 6] = "bbbb" + "#" + "-" * 8 + "." * (KGR_WIDTH - 13)
    return rows


def kgoldrunner_seeds() -> list[tuple[str, bytes]]:
    from genforge.levels.formats import KgrLevel, write_kgoldrunner
    levels = [KgrLevel(1, "Warm Up", _lode_rows(3)), KgrLevel(2, "", _lode_rows(9))]
    return [("game_fuzz.txt", write_kgoldrunner(levels, prefix="fuzz").encode())]


def vglc_seeds() -> list[tuple[str, bytes]]:
    grids = FIXTURES / "levels" / "grids"
    lode = "\n".join(_lode_rows(5)) + "\n"
    return [("a.txt", (grids / "a.txt").read_bytes()), ("lode.txt", lode.encode())]


def legend_seeds() -> list[tuple[str, bytes]]:
    from genforge.levels.formats import LODE_RUNNER
    return [("legend.json", (FIXTURES / "levels" / "grids" / "legend.json").read_bytes()),
            ("lode-runner.json", json.dumps(LODE_RUNNER.to_dict()).encode())]


def model_config_seeds() -> list[tuple[str, bytes]]:
    image = json.loads((FIXTURES / "fuzz" / "model-config.json").read_text())
    level = dict(image, modality="level", item_shape=[10, 10], model_shape=[7, 10, 10],
                 class_names=[], vocabulary={"legend": {"game": "sokoban"}})
    return [("config.json", json.dumps(image, indent=2).encode()),
            ("level-config.json", json.dumps(level).encode())]


def tensor_seeds() -> list[tuple[str, bytes]]:
    import torch
    from genforge import io
    tensors = {"net.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),
               "net.bias": torch.zeros(3, dtype=torch.bfloat16),
               "step": torch.tensor([7], dtype=torch.int64)}
    meta = {"format": "genforge-checkpoint", "step": 7, "config": {"train": {"lr": 0.002}}}
    with tempfile.TemporaryDirectory() as tmp:
        path = io.save_tensors(Path(tmp) / "t.safetensors", tensors, meta)
        return [("model.safetensors", path.read_bytes())]


def idx_seeds() -> list[tuple[str, bytes]]:
    from genforge.modalities import fashion_mnist
    rng = np.random.default_rng(0)
    images = fashion_mnist.encode_idx(rng.integers(0, 256, (6, 28, 28), dtype=np.uint8))
    labels = fashion_mnist.encode_idx(rng.integers(0, 10, 6, dtype=np.uint8))
    return [("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels),
            ("images-idx3-ubyte.gz", gzip.compress(images, mtime=0))]


# ---- mutations -----------------------------------------------------------------------------

INTERESTING_INTS = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 1_000_000,
                    0x0FFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
INTERESTING_NUMBERS = ("0", "-1", "1", "-999999", "99999999999", "99999999999999999999",
                       "4294967296", "1e308", "-1e308", "NaN", "Infinity", "\u00b2\u00b3\u00b9",
                       "\u0661\u0662", "\U0001d7d9", "0x10", "1.5", "9" * 400, "268435455",
                       "65536", "3000")
WEIRD_TEXT = ("\u00b2", "\u0661", "\x00", "\ufeff", "\u202e", "\u00e9", "\udcff", "\U0001d7d9",
              "\r", "\t", "\\", '"', "\n\n")
INTERESTING_JSON = (None, True, False, 0, -1, 1, 2, 10 ** 20, 2 ** 63, 1e308, -1e308,
                    float("nan"), float("inf"), "", "x", "\u00b2", "9" * 30, [], {}, [0], [-1],
                    [0, 12, 12], [1, -1, 12], [10 ** 9, 10 ** 9, 10 ** 9], [1, 12], ["a"] * 3,
                    {"a": 1}, {"#": 5}, "A" * 5000, "__DEEP__")
DEEP = 5000  # nesting depth of the deep values: far past Python's recursion limit


@dataclass
class Mutator:
    name: str
    apply: Callable[[random.Random, bytes, list[bytes]], bytes]


def _pos(rng: random.Random, data: bytes) -> int:
    return rng.randrange(len(data) + 1)


def _times(piece, wanted: int) -> int:
    """At most `wanted` copies of piece, and no more than fit in MAX_INPUT: a mutation must never
    be what exhausts the fuzzer's own memory (a 4 MB line widened 3,000 times once did)."""
    return max(1, min(wanted, MAX_INPUT // max(1, len(piece))))


def flip_bits(rng, data, _):
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        if out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def interesting_bytes(rng, data, _):
    size = rng.choice((1, 2, 4))
    value = rng.choice(INTERESTING_INTS) & ((1 << (8 * size)) - 1)
    packed = value.to_bytes(size, rng.choice(("big", "little")))
    at = rng.randrange(max(1, len(data) - size + 1))
    return data[:at] + packed + data[at + size:]


def truncate(rng, data, _):
    return data[:rng.randrange(len(data) + 1)]


def insert_bytes(rng, data, _):
    at = _pos(rng, data)
    return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 32))) + data[at:]


def repeat_chunk(rng, data, _):
    if not data:
        return data
    a = rng.randrange(len(data))
    chunk = data[a:a + rng.randint(1, 64)]
    at = _pos(rng, data)
    return data[:at] + chunk * _times(chunk, rng.choice((2, 16, 300, 5000))) + data[at:]


def delete_chunk(rng, data, _):
    a = _pos(rng, data)
    return data[:a] + data[a + rng.randint(1, 256):]


def splice(rng, data, others):
    other = rng.choice(others)
    return data[:_pos(rng, data)] + other[_pos(rng, other):]


BYTE_MUTATORS = [Mutator(f.__name__, f) for f in (flip_bits, interesting_bytes, truncate,
                                                   insert_bytes, repeat_chunk, delete_chunk, splice)]


def _text(fn):
    """A mutator over text (undecodable bytes kept as surrogates, so they come back as bytes)."""
    def apply(rng, data, others):
        text = data.decode("utf-8", "surrogateescape")
        return fn(rng, text).encode("utf-8", "surrogateescape")
    return apply


def _number(rng, text):
    found = list(re.finditer(r"-?\d+(?:\.\d+)?", text))
    if not found:
        return text + rng.choice(INTERESTING_NUMBERS)
    m = rng.choice(found)
    return text[:m.start()] + rng.choice(INTERESTING_NUMBERS) + text[m.end():]


def _lines(text):
    return text.split("\n")


def _repeat_line(rng, text):
    lines = _lines(text)
    k = rng.randrange(len(lines))
    lines[k:k + 1] = [lines[k]] * _times(lines[k] + "\n", rng.choice((2, 40, 300, 3000)))
    return "\n".join(lines)


def _widen_line(rng, text):
    lines = _lines(text)
    k = rng.randrange(len(lines))
    lines[k] = lines[k] * _times(lines[k], rng.choice((2, 10, 300, 3000)))
    return "\n".join(lines)


def _weird(rng, text):
    at = rng.randrange(len(text) + 1)
    return text[:at] + rng.choice(WEIRD_TEXT) + text[at:]


def text_mutators(tokens: tuple[str, ...], openers: tuple[str, ...]) -> list[Mutator]:
    """Number swaps, repeated and widened lines, odd characters, the format's own tokens at a
    line start or anywhere, and openers nested deep (a format's '[', '2(' or '<a>')."""
    def token(rng, text):
        lines = _lines(text)
        k = rng.randrange(len(lines) + 1)
        word = rng.choice(tokens) + (rng.choice(INTERESTING_NUMBERS) if rng.random() < 0.5 else "")
        if rng.random() < 0.5:
            return "\n".join(lines[:k] + [word] + lines[k:])
        at = rng.randrange(len(text) + 1)
        return text[:at] + word + text[at:]

    def nest(rng, text):
        n = rng.choice((50, 1000, DEEP, 100_000))
        opener = rng.choice(openers)
        at = rng.randrange(len(text) + 1)
        closer = {"[": "]", "{": "}", "(": ")", "<a>": "</a>", "2(": ")"}.get(opener, "")
        return text[:at] + opener * n + closer * (n if rng.random() < 0.5 else 0) + text[at:]

    fns = [("number", _number), ("repeat_line", _repeat_line), ("widen_line", _widen_line),
           ("weird_char", _weird), ("token", token), ("nest", nest)]
    return [Mutator(name, _text(fn)) for name, fn in fns]


def _deep_json(value) -> str:
    text = json.dumps(value)
    return text.replace('"__DEEP__"', "[" * DEEP + "]" * DEEP)


def _json_paths(obj) -> list[tuple]:
    paths, todo = [], [((), obj)]
    while todo:
        path, node = todo.pop()
        paths.append(path)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        todo += [(path + (k,), v) for k, v in items]
    return paths


def _json_edit(rng, data, _, mode=None):
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):  # not JSON (any more), or nested too deep to edit
        return flip_bits(rng, data, _)
    paths = _json_paths(obj)
    path = rng.choice(paths)
    mode = mode or rng.choice(("replace", "replace", "delete", "add", "retype"))
    if not path:
        return _deep_json(rng.choice(INTERESTING_JSON)).encode()
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    if mode == "delete":
        del parent[key]
    elif mode == "add" and isinstance(parent, dict):
        parent[rng.choice(("extra", "tiles", "order", "aliases", "filler", "family", "item_shape",
                           "class_names", "modality", "model_shape", "vocabulary"))] = rng.choice(INTERESTING_JSON)
    elif mode == "retype":
        value = parent[key]
        parent[key] = ([value] if not isinstance(value, list) else
                       {str(i): v for i, v in enumerate(value)})
    else:
        parent[key] = rng.choice(INTERESTING_JSON)
    return _deep_json(obj).encode()


JSON_MUTATORS = [Mutator("json_edit", _json_edit)]


def _png_chunks(data: bytes) -> list[tuple[int, bytes, bytes]] | None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    chunks, at = [], 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        chunks.append((at, kind, data[at + 8:at + 8 + length]))
        at += 12 + length
    return chunks


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(rng, data, others):
    """Rewrite IHDR's width, height, depth, colour type or interlace, with its CRC fixed."""
    chunks = _png_chunks(data)
    if not chunks or chunks[0][1] != b"IHDR" or len(chunks[0][2]) != 13:
        return interesting_bytes(rng, data, others)
    at, _, body = chunks[0]
    w, h, depth, colour, comp, filt, lace = struct.unpack(">IIBBBBB", body)
    field_ = rng.randrange(5)
    value = rng.choice(INTERESTING_INTS)
    if field_ == 0:
        w = value & 0xFFFFFFFF
    elif field_ == 1:
        h = value & 0xFFFFFFFF
    elif field_ == 2:
        depth = rng.choice((1, 2, 4, 8, 16, 0, 3, 255))
    elif field_ == 3:
        colour = rng.choice((0, 2, 3, 4, 6, 1, 7, 255))
    else:
        lace = rng.choice((0, 1, 2))
    body = struct.pack(">IIBBBBB", w, h, depth, colour, comp, filt, lace)
    return data[:at] + _png_chunk(b"IHDR", body) + data[at + 25:]


def png_chunk(rng, data, others):
    """Insert a chunk with a valid CRC after IHDR (text, palette, transparency, ICC, APNG)."""
    chunks = _png_chunks(data)
    if not chunks:
        return insert_bytes(rng, data, others)
    kind = rng.choice((b"tEXt", b"zTXt", b"iTXt", b"iCCP", b"PLTE", b"tRNS", b"acTL", b"fcTL",
                       b"eXIf", b"pHYs", b"IDAT", b"sBIT", b"gAMA"))
    if kind == b"zTXt":
        body = b"genforge\x00\x00" + zlib.compress(b"{" * rng.choice((10, 100_000)))
    elif kind == b"acTL":
        body = struct.pack(">II", rng.choice(INTERESTING_INTS), rng.choice((0, 1)))
    else:
        body = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 3, 13, 768))))
    at = 33 if len(data) >= 33 else len(data)
    return data[:at] + _png_chunk(kind, body) + data[at:]


def jpeg_size(rng, data, others):
    """Set the frame header's height or width (SOF0/SOF2) to an interesting value."""
    found = [m.start() for m in re.finditer(rb"\xff[\xc0\xc1\xc2]", data)]
    if not found:
        return interesting_bytes(rng, data, others)
    at = rng.choice(found) + 5 + 2 * rng.randrange(2)
    return data[:at] + (rng.choice(INTERESTING_INTS) & 0xFFFF).to_bytes(2, "big") + data[at + 2:]


def bmp_header(rng, data, others):
    """Set a BMP's width or height (signed), bits per pixel, compression or colour count."""
    if not data.startswith(b"BM") or len(data) < 54:
        return interesting_bytes(rng, data, others)
    at, size, signed = rng.choice(((18, 4, True), (22, 4, True), (28, 2, False), (30, 4, False),
                                   (46, 4, False), (10, 4, False), (14, 4, False)))
    value = rng.choice(INTERESTING_INTS) * rng.choice((1, -1) if signed else (1,))
    value &= (1 << (8 * size)) - 1
    return data[:at] + value.to_bytes(size, "little") + data[at + size:]


def midi_edit(rng, data, others):
    """Through mido: a huge or odd ticks-per-quarter, delta time, tempo or note length."""
    import mido
    try:
        mid = mido.MidiFile(file=_io.BytesIO(data))
    except Exception:
        return interesting_bytes(rng, data, others)
    choice = rng.randrange(4)
    if choice == 0 or not any(mid.tracks):
        division = rng.choice((1, 2, 3, 0x7FFF, 0x8000, 0xE728, 0xFFFF, 0))
        return data[:12] + division.to_bytes(2, "big") + data[14:]
    track = rng.choice([t for t in mid.tracks if t])
    k = rng.randrange(len(track))
    if choice == 1:
        track[k] = track[k].copy(time=rng.choice((0x0FFFFFFF, 0x7FFFFF, 1_000_000, 96_000)))
    elif choice == 2:
        track.insert(k, mido.MetaMessage("set_tempo", tempo=rng.choice((0, 1, 0xFFFFFF))))
    else:
        track.insert(k, mido.MetaMessage("time_signature", numerator=rng.choice((0, 1, 255)),
                                         denominator=rng.choice((1, 2, 64, 128))))
    buffer = _io.BytesIO()
    try:
        mid.save(file=buffer)
    except Exception:
        return interesting_bytes(rng, data, others)
    return buffer.getvalue()


def tensors_header(rng, data, others):
    """Edit the safetensors JSON header (shapes, dtypes, offsets, metadata), length kept right."""
    if len(data) < 8:
        return data
    size = int.from_bytes(data[:8], "little")
    header = data[8:8 + size]
    if rng.random() < 0.2:
        return rng.choice(INTERESTING_INTS).to_bytes(8, "little") + data[8:]
    header = _json_edit(rng, header, others)
    return len(header).to_bytes(8, "little") + header + data[8 + size:]


def idx_header(rng, data, others):
    """Set an IDX dimension (or the type byte) to an interesting value; gzipped files too."""
    packed = data[:2] == b"\x1f\x8b"
    try:
        raw = gzip.decompress(data) if packed else data
    except (OSError, EOFError, zlib.error):  # a gzip file an earlier mutation broke
        return interesting_bytes(rng, data, others)
    if len(raw) < 8:
        return data
    at = rng.choice((2, 3) + tuple(4 + 4 * i for i in range(min(raw[3], 3))))
    if at in (2, 3):
        raw = raw[:at] + bytes([rng.choice((0, 1, 3, 8, 9, 0x0B, 0x0E, 0xFF))]) + raw[at + 1:]
    else:
        raw = raw[:at] + (rng.choice(INTERESTING_INTS) & 0xFFFFFFFF).to_bytes(4, "big") + raw[at + 4:]
    return gzip.compress(raw, mtime=0) if packed else raw


# ---- targets -------------------------------------------------------------------------------

@dataclass
class Target:
    """A reader: its seeds, mutators, how a folder holding one input is laid out and read."""

    name: str
    seeds: Callable[[], list[tuple[str, bytes]]]
    mutators: list[Mutator]
    run: Callable[[Path, Path, int], str]      # (folder, input file, variant) -> loaded/skipped
    companions: Callable[[], dict[str, bytes]] = dict   # fixed files beside the input
    note: str = ""
    budget: Callable[[Path], float] | None = None  # the reader's own time limit for an input
    _made: dict = field(default_factory=dict, repr=False)

    def seed_list(self) -> list[tuple[str, bytes]]:
        if "seeds" not in self._made:
            self._made["seeds"] = self.seeds()
        return self._made["seeds"]

    def companion_files(self) -> dict[str, bytes]:
        if "companions" not in self._made:
            self._made["companions"] = self.companions()
        return self._made["companions"]


def _image_run(folder, path, variant):
    from genforge.config import DataConfig
    from genforge.modalities import image
    # variant 1 asks for a fixed size, which is what upscaled a thin strip
    cfg = DataConfig(source=str(folder), resolution=(None, 48)[variant % 2], fit="crop",
                     labels="none", max_bad_fraction=1.0)
    data = image.read_folder(cfg)
    return "skipped" if data.report.skipped else "loaded"


def _good_png() -> dict[str, bytes]:
    grey = np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)
    return {"good.png": _image_bytes(grey, "L", "PNG")}


def _music_run(folder, path, variant):
    from genforge.music import corpus
    found = corpus.read_corpus(path, ("satb", "pianoroll")[variant % 2], use_cache=False)
    return "loaded" if found.pieces else "skipped"


def _music_budget(path: Path) -> float:
    """music.corpus's time limit for parsing a file (its size decides it); none before it had one."""
    from genforge.music import corpus
    return corpus.parse_seconds(path) if hasattr(corpus, "parse_seconds") else 0.0


def _melody_run(folder, path, variant):
    from genforge.music import harmonize
    harmonize.read_given(path)
    return "loaded"


def _levels(result) -> str:
    levels, skipped = result[0], result[1]
    return "skipped" if skipped or not levels else "loaded"


def _xsb_run(folder, path, variant):
    from genforge.levels import sources
    return _levels(sources.load_path(str(folder)))


def _kgr_run(folder, path, variant):
    from genforge.levels import sources
    return _levels(sources.load_lode_runner(str(folder)))


def _vglc_run(folder, path, variant):
    from genforge.levels import sources
    legend = "lode-runner" if path.name.startswith("lode") else None  # else the folder's .json
    return _levels(sources.load_path(str(folder), legend))


def _grid_legend() -> dict[str, bytes]:
    return {"legend.json": (FIXTURES / "levels" / "grids" / "legend.json").read_bytes()}


def _legend_run(folder, path, variant):
    from genforge.levels import formats, sources
    formats.read_legend(path)
    return _levels(sources.load_path(str(folder)))


def _grid_level() -> dict[str, bytes]:
    return {"a.txt": (FIXTURES / "levels" / "grids" / "a.txt").read_bytes()}


def _model_config_run(folder, path, variant):
    from genforge import export
    from genforge.families import ModelSpec
    path.rename(folder / "config.json")
    model_config, _, _ = export.read_model_folder(folder)
    ModelSpec.from_dict(model_config)
    return "loaded"


def _manifest() -> dict[str, bytes]:
    return {"manifest.json": b'{"weights": "ema"}\n'}


def _model_load_run(folder, path, variant):
    from genforge import export
    path.rename(folder / "config.json")
    export.load_module(folder)
    return "loaded"


def _model_files() -> dict[str, bytes]:
    """manifest.json and weights that fit the image seed config (built with the library)."""
    import torch
    from genforge import io
    from genforge.config import config_from_dict
    from genforge.families import FAMILIES, ModelSpec
    model_config = json.loads((FIXTURES / "fuzz" / "model-config.json").read_text())
    spec, run_config = ModelSpec.from_dict(model_config), config_from_dict(model_config["run_config"])
    torch.manual_seed(0)
    family = FAMILIES[model_config["family"]]
    module = family.exported(family.build(spec, run_config))
    with tempfile.TemporaryDirectory() as tmp:
        path = io.save_tensors(Path(tmp) / "m.safetensors", module.state_dict(), {})
        return {**_manifest(), "model.safetensors": path.read_bytes()}


def _tensors_run(folder, path, variant):
    from genforge import io
    io.load_tensors(path)
    return "loaded"


def _idx_run(folder, path, variant):
    from genforge.modalities import fashion_mnist
    fashion_mnist.read_idx(path)
    return "loaded"


XSB_TOKENS = ("Solution: ", "Solution:", "Title: ", "Comment:", "Comment-End:", "; ", "Author: ",
              "#@$.#", "#", "@", "$", "*", "+", "2(", ")", "99999999999r", "\u00b2r")
KGR_TOKENS = ("// L", "// L001", "//  ", ' i18n("', "// .dwf true", "// G", '");', "R", "N")
GRID_TOKENS = ("X", "-", "c", "p", "M", "G", "B", "E", "#", "?")
JSON_TOKENS = ('"tiles"', '"order"', '"aliases"', '"filler"', '"item_shape"', "null", "true",
               "[]", "{}", ",", ":", '"', "-", "1e999")
XML_TOKENS = ("<beats>", "</beats>", "<beat-type>", "<divisions>", "</divisions>", "<duration>",
              "</duration>", "<time>", "<note>", "<rest/>", "<chord/>", "<tie type=\"start\"/>",
              "<!ENTITY a \"aaaaaaaaaa\">", "&a;", "<backup><duration>", "<forward><duration>",
              "<tuplet", "<time-modification><actual-notes>", "<measure number=\"", "<part id=\"P9\">")
KERN_TOKENS = ("*M", "*M4/4", "*M99999/1", "*MM", "=", "==", "*-", "**kern", "*^", "*v", "*v\t*v",
               "4", "1024", "0.", "[", "]", "_", "r", "q", "*tb", "*clefF4", "\t", "*k[f#c#g#d#a#e#b#]",
               "!!!")

TARGETS = {t.name: t for t in [
    Target("image", image_seeds,
           BYTE_MUTATORS + [Mutator("png_header", png_header), Mutator("png_chunk", png_chunk),
                            Mutator("jpeg_size", jpeg_size), Mutator("bmp_header", bmp_header)],
           _image_run, _good_png, "read_folder beside a good image; resolution default and 48"),
    Target("midi", midi_seeds, BYTE_MUTATORS + [Mutator("midi_edit", midi_edit)] * 3, _music_run,
           note="read_corpus, satb and pianoroll", budget=_music_budget),
    Target("musicxml", musicxml_seeds,
           BYTE_MUTATORS + text_mutators(XML_TOKENS, ("<a>",)) * 2, _music_run,
           budget=_music_budget),
    Target("humdrum", humdrum_seeds, BYTE_MUTATORS + text_mutators(KERN_TOKENS, ("*^\t",)) * 2,
           _music_run, budget=_music_budget),
    Target("melody", lambda: midi_seeds() + musicxml_seeds()[:1],
           BYTE_MUTATORS + [Mutator("midi_edit", midi_edit)] * 2, _melody_run,
           note="harmonize.read_given (a melody to harmonise)", budget=_music_budget),
    Target("xsb", xsb_seeds, BYTE_MUTATORS + text_mutators(XSB_TOKENS, ("2(", "(")) * 3, _xsb_run),
    Target("kgoldrunner", kgoldrunner_seeds, BYTE_MUTATORS + text_mutators(KGR_TOKENS, ("(",)) * 3,
           _kgr_run),
    Target("vglc", vglc_seeds, BYTE_MUTATORS + text_mutators(GRID_TOKENS, ("X",)) * 2, _vglc_run,
           _grid_legend, "a text grid with the folder's legend.json, or with lode-runner's"),
    Target("legend", legend_seeds, BYTE_MUTATORS + JSON_MUTATORS * 8 +
           text_mutators(JSON_TOKENS, ("[", "{")), _legend_run, _grid_level),
    Target("model-config", model_config_seeds, BYTE_MUTATORS + JSON_MUTATORS * 8 +
           text_mutators(JSON_TOKENS, ("[", "{")), _model_config_run, _manifest,
           "read_model_folder and ModelSpec.from_dict"),
    Target("model-load", lambda: model_config_seeds()[:1], JSON_MUTATORS * 4 + [
           Mutator("number", _text(_number))], _model_load_run, _model_files,
           "export.load_module: builds the network (config.validate's ranges)"),
    Target("safetensors", tensor_seeds, BYTE_MUTATORS + [Mutator("tensors_header", tensors_header)] * 6,
           _tensors_run),
    Target("idx", idx_seeds, BYTE_MUTATORS + [Mutator("idx_header", idx_header)] * 4, _idx_run),
]}


# ---- cases and attempts --------------------------------------------------------------------

@dataclass
class Case:
    """One input: the seed it came from, how it was mutated, and its bytes."""

    reader: str
    seed: str          # the seed's file name (its suffix is the input's)
    recipe: list[str]
    data: bytes
    index: int = -1    # its place in cases(target, seed): --case replays it

    @property
    def variant(self) -> int:  # a reader option chosen by the bytes, so the input alone replays
        return zlib.crc32(self.data)

    def describe(self, limit: int = 600) -> str:
        shown = self.data[:limit]
        more = f" ... ({len(self.data)} bytes)" if len(self.data) > limit else ""
        return (f"{self.reader} case {self.index} (replay: python benchmarks/fuzz.py --reader "
                f"{self.reader} --case {self.index}), seed file {self.seed}, mutated by "
                f"{' + '.join(self.recipe) or 'nothing'}, variant {self.variant % 2}: {shown!r}{more}")


def cases(target: Target, seed: int, count: int | None = None):
    """Seeded inputs for a target: the seeds themselves first, then 1-3 mutations of a seed."""
    rng = random.Random(f"{seed}:{target.name}")
    seeds = target.seed_list()
    others = [d for _, d in seeds]
    n = 0
    for name, data in seeds:
        if count is not None and n >= count:
            return
        yield Case(target.name, name, [], data, n)
        n += 1
    while count is None or n < count:
        name, data = rng.choice(seeds)
        recipe = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            mutator = rng.choice(target.mutators)
            data = mutator.apply(rng, data, others)[:MAX_INPUT]
            recipe.append(mutator.name)
        yield Case(target.name, name, recipe, data, n)
        n += 1


@dataclass
class Outcome:
    kind: str            # loaded, skipped, error, crash, hang
    detail: str = ""
    where: str = ""      # crash: the innermost genforge line (file:line)
    seconds: float = 0.0
    rss_mib: float = 0.0     # peak resident memory of the child
    growth_mib: float = 0.0  # ... above its resident memory when it started (0: unknown)
    result: dict = field(default_factory=dict, repr=False)  # what the child sent back


def _vm_bytes(field_: str = "VmSize") -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_ + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _innermost(err: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(err.__traceback__) if "genforge" in f.filename]
    frame = frames[-1] if frames else (traceback.extract_tb(err.__traceback__) or [None])[-1]
    if frame is None:
        return ""
    parts = Path(frame.filename).parts
    short = "/".join(parts[parts.index("genforge") + 1:]) if "genforge" in parts else parts[-1]
    return f"{short}:{frame.lineno}"


def _classify(target: Target, folder: Path, path: Path, variant: int) -> dict:
    from genforge.errors import GenforgeError
    try:
        return {"kind": target.run(folder, path, variant)}
    except GenforgeError as err:
        text = str(err)
        if "\n" in text.strip() or not text.strip():
            return {"kind": "crash", "detail": f"{type(err).__name__} not one line: {text!r}",
                    "where": _innermost(err)}
        if path.name not in text and folder.name not in text:
            return {"kind": "crash", "detail": f"error names no file: {text}", "where": _innermost(err)}
        return {"kind": "error", "detail": text}
    except BaseException as err:  # noqa: BLE001 - everything else is what we look for
        text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        return {"kind": "crash", "detail": text[:500],
                "where": f"{type(err).__name__} at {_innermost(err)}"}


def attempt(target: Target, case: Case, seconds: float = 10.0, memory_mib: int = 2048) -> Outcome:
    """Run one input in a forked child with a wall-time and address-space limit."""
    with tempfile.TemporaryDirectory(prefix="genforge-fuzz-") as tmp:
        folder = Path(tmp) / "fuzzcase"
        folder.mkdir()
        for name, data in target.companion_files().items():
            (folder / name).write_bytes(data)
        path = folder / case.seed
        path.write_bytes(case.data)
        if target.budget is not None:  # a reader that bounds its own time: past that, it hangs
            seconds = max(seconds, target.budget(path) + 2)
        return run_limited(lambda: _classify(target, folder, path, case.variant), seconds,
                           memory_mib)


def run_limited(fn: Callable[[], dict], seconds: float = 10.0, memory_mib: int = 2048) -> Outcome:
    """fn() -> {"kind": ..., ...} (JSON) in a forked child given `seconds` of wall time and
    `memory_mib` more address space; a hang, a signal or no answer is an Outcome too. What fn
    returned is in Outcome.result."""
    read, write = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller
        try:
            os.close(read)
            os.setpgid(0, 0)  # its own group, so a hang's helpers die with it
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            limit = _vm_bytes() + (memory_mib << 20)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            start = _vm_bytes("VmRSS")
            result = {**fn(), "start": start}
            os.write(write, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks, hung = [], False
    while True:
        left = started + seconds - time.monotonic()
        ready = select.select([read], [], [], max(0.0, left))[0] if left > 0 else []
        if not ready:
            hung = True
            break
        chunk = os.read(read, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    if hung:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.monotonic() - started
    os.close(read)
    try:
        result = json.loads(b"".join(chunks))
    except ValueError:
        result = None
    rss = usage.ru_maxrss / 1024
    start = (result or {}).get("start", 0) / 2 ** 20
    common = dict(seconds=elapsed, rss_mib=rss, growth_mib=max(0.0, rss - start) if start else 0.0,
                  result=result or {})
    if hung:
        return Outcome("hang", f"still running after {seconds:g} s", **common)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return Outcome("crash", f"killed by signal {sig}", f"signal {sig}", **common)
    if result is None:
        return Outcome("crash", "the child exited without a result", "no result", **common)
    return Outcome(result["kind"], result.get("detail", ""), result.get("where", ""), **common)


def warm_up(targets: list[Target]) -> None:
    """Import what the readers need and make their seeds once, so children fork warm."""
    import genforge.export  # noqa: F401
    import genforge.levels.sources  # noqa: F401
    import genforge.modalities.image  # noqa: F401
    import genforge.music.corpus  # noqa: F401
    import genforge.music.harmonize  # noqa: F401
    import music21.converter  # noqa: F401  (about a second: once, not per input)
    for target in targets:
        target.seed_list()
        target.companion_files()


# ---- the long run --------------------------------------------------------------------------

BIG_MIB = 1024  # an input that makes a reader grow by this much counts as a memory blow-up


@dataclass
class Tally:
    counts: Counter = field(default_factory=Counter)
    classes: Counter = field(default_factory=Counter)
    slowest: float = 0.0
    peak_mib: float = 0.0
    growth_mib: float = 0.0
    big: int = 0  # inputs that grew the reader by BIG_MIB or more
    slow: int = 0  # inputs that took longer than --seconds (within the reader's own budget)


def fuzz_reader(target: Target, minutes: float, seed: int, seconds: float, memory_mib: int,
                out: Path) -> Tally:
    tally = Tally()
    stop = time.monotonic() + minutes * 60
    for k, case in enumerate(cases(target, seed)):
        if time.monotonic() >= stop:
            break
        outcome = attempt(target, case, seconds, memory_mib)
        tally.counts[outcome.kind] += 1
        tally.slowest = max(tally.slowest, outcome.seconds)
        tally.peak_mib = max(tally.peak_mib, outcome.rss_mib)
        tally.growth_mib = max(tally.growth_mib, outcome.growth_mib)
        tally.big += outcome.growth_mib >= BIG_MIB
        tally.slow += outcome.kind != "hang" and outcome.seconds > seconds
        if outcome.kind in ("crash", "hang"):
            key = outcome.where or outcome.detail[:60] if outcome.kind == "crash" else "hang"
            tally.classes[key] += 1
            if tally.classes[key] <= 3:  # a few examples of each class
                stem = f"{target.name}-{outcome.kind}-{k}"
                (out / (stem + Path(case.seed).suffix)).write_bytes(case.data)
                with open(out / "findings.jsonl", "a") as f:
                    f.write(json.dumps({"file": stem + Path(case.seed).suffix, "reader": target.name,
                                        "seed": case.seed, "recipe": case.recipe,
                                        "variant": case.variant % 2, "kind": outcome.kind,
                                        "class": key, "detail": outcome.detail[:300],
                                        "seconds": round(outcome.seconds, 2)}) + "\n")
    return tally


def print_table(rows: list[tuple[str, Tally]], base_mib: float) -> None:
    print(f"\nparent RSS: {base_mib:.0f} MiB; a child's peak counts the pages it shares with it "
          "once touched, 'growth' is the peak less the child's RSS at its start\n")
    print("| reader | inputs | loaded | clean errors | skips | crashes (classes) | hangs | slow, "
          f"in budget | slowest s | peak MiB | growth MiB | inputs >= {BIG_MIB} MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, t in rows:
        c = t.counts
        crash_classes = len([k for k in t.classes if k != "hang"])
        print(f"| {name} | {sum(c.values())} | {c['loaded']} | {c['error']} | {c['skipped']} | "
              f"{c['crash']} ({crash_classes}) | {c['hang']} | {t.slow} | {t.slowest:.1f} | {t.peak_mib:.0f} | "
              f"{t.growth_mib:.0f} | {t.big} |")
    for name, t in rows:
        for key, n in t.classes.most_common():
            print(f"  {name}: {n} x {key}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="per reader")
    parser.add_argument("--reader", action="append", choices=sorted(TARGETS),
                        help="fuzz only this reader (repeatable; default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10.0, help="a hang: longer than this")
    parser.add_argument("--memory", type=int, default=2048,
                        help="MiB of address space an input may add (past it, allocation fails)")
    parser.add_argument("--out", type=Path, default=Path("runs/fuzz"),
                        help="where crashing and hanging inputs are saved")
    parser.add_argument("--replay", type=Path, help="run one saved input and print its outcome")
    parser.add_argument("--case", type=int, help="run case N of --seed (as tests/test_fuzz.py "
                        "numbers them), print it and its outcome")
    parser.add_argument("--list", action="store_true", help="list the readers")
    args = parser.parse_args(argv)
    if args.list:
        for t in TARGETS.values():
            print(f"{t.name:14} {len(t.seed_list())} seeds  {t.note}")
        return 0
    names = args.reader or [n for n in TARGETS]
    targets = [TARGETS[n] for n in names]
    warm_up(targets)
    if args.case is not None:
        case = next(c for c in cases(targets[0], args.seed) if c.index == args.case)
        print(case.describe(), "\n", attempt(targets[0], case, args.seconds, args.memory))
        return 0
    if args.replay:
        data = args.replay.read_bytes()
        case = Case(targets[0].name, "replay" + "".join(args.replay.suffixes[-1:]), [], data)
        print(attempt(targets[0], case, args.seconds, args.memory))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    base = _vm_bytes("VmRSS") / 2 ** 20  # after warm_up: what every child starts from
    rows = []
    for target in targets:
        started = time.monotonic()
        rows.append((target.name, fuzz_reader(target, args.minutes, args.seed, args.seconds,
                                              args.memory, args.out)))
        print(f"{target.name}: {sum(rows[-1][1].counts.values())} inputs in "
              f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    print_table(rows, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
