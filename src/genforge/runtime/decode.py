"""Items from network outputs, and items as files, in numpy: images (PNG), levels (XSB or text,
and a PNG render), music (MIDI). Each follows the PyTorch content kind it names (modalities/), as
the export describes it (config.json "onnx"."decode"); the equivalence tests compare the two."""
from __future__ import annotations

import json
import struct

import numpy as np
from PIL import Image

MIDI_TICKS_PER_QUARTER = 480
MIDI_TEMPO = 80.0          # quarter notes per minute, as music.writing
VOICES = ("soprano", "alto", "tenor", "bass")


# -- items from model tensors --------------------------------------------------------------------
def image_items(x: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> uint8, clamped and rounded (modalities.image.from_model)."""
    x = np.nan_to_num(x.astype(np.float32))
    return np.clip((x + np.float32(1)) * np.float32(127.5), 0, 255).round().astype(np.uint8)


def level_items(x: np.ndarray) -> np.ndarray:
    """float one-hot [N, K, H, W] -> tile indices uint8 [N, H, W] (NaN loses)."""
    return np.nan_to_num(x.astype(np.float32), nan=-np.inf).argmax(1).astype(np.uint8)


def canonical_satb(codes: np.ndarray, d: dict) -> np.ndarray:
    """Well-formed SATB codes (music.representation.canonical_satb)."""
    onset_flag, low_pitch = d["onset"], d["pitch_low"]
    codes = np.asarray(codes).astype(np.int16)
    low = codes % onset_flag
    pitches = np.where(low == 0, -1, low - 1 + low_pitch).astype(np.int16)
    flagged = (codes >= onset_flag) & (pitches >= 0)
    previous = np.concatenate([np.full_like(pitches[..., :1], -1), pitches[..., :-1]], axis=-1)
    onsets = flagged | ((pitches >= 0) & (pitches != previous))
    out = np.where(pitches < 0, 0, pitches - low_pitch + 1) + np.where(onsets, onset_flag, 0)
    return out.astype(np.uint8)


def music_items(x: np.ndarray, d: dict) -> np.ndarray:
    """One-hot planes -> SATB codes [N, 4, T] or piano rolls [N, 88, T]."""
    x = np.nan_to_num(x.astype(np.float32))
    if d["encoding"] == "satb":
        bins = x[:, :len(VOICES)].argmax(-1)
        onset = np.take_along_axis(x[:, len(VOICES):], bins[..., None], -1)[..., 0] > 0
        return canonical_satb(bins + np.where(onset & (bins > 0), d["onset"], 0), d)
    on, attacked = x[:, 0] > 0, x[:, 1] > 0
    previous = np.concatenate([np.zeros_like(on[:, :1]), on[:, :-1]], axis=1)
    codes = on.astype(np.uint8) + (on & (attacked | ~previous)).astype(np.uint8)
    return np.ascontiguousarray(codes.transpose(0, 2, 1))


def music_from_tokens(tokens: np.ndarray, d: dict) -> np.ndarray:
    """Discrete symbols -> SATB codes (music.representation.satb_from_tokens) or rolls."""
    if d["encoding"] != "satb":
        return np.clip(tokens, 0, 2).astype(np.uint8)
    t = np.clip(tokens.astype(np.int64), 0, 2 * d["pitch_bins"])
    attacked = t > d["pitch_bins"]
    return canonical_satb(np.where(attacked, t - d["pitch_bins"] + d["onset"], t), d)


# -- notes and MIDI ------------------------------------------------------------------------------
def notes(item: np.ndarray, d: dict) -> list[tuple[int, int, int, int]]:
    """(pitch, start, end, voice) of one item, sorted as music.representation does."""
    item = np.asarray(item)
    out = []
    if d["encoding"] == "satb":
        codes = item.astype(np.int16)
        low = codes % d["onset"]
        pitches = np.where(low == 0, -1, low - 1 + d["pitch_low"])
        canon = canonical_satb(item, d)
        onsets = canon >= d["onset"]
        for v in range(pitches.shape[0]):
            starts = np.flatnonzero(onsets[v])
            for k, s in enumerate(starts):
                limit = starts[k + 1] if k + 1 < len(starts) else pitches.shape[1]
                held = pitches[v, s:limit] == pitches[v, s]
                end = s + (int(np.argmin(held)) if not held.all() else len(held))
                out.append((int(pitches[v, s]), int(s), int(end), v))
        return sorted(out, key=lambda n: (n[1], n[3], n[0]))
    for key, row in enumerate(item):
        on = row > 0
        previous = np.concatenate([[False], on[:-1]])
        starts = np.flatnonzero(on & ((row == 2) | ~previous))
        for k, s in enumerate(starts):
            limit = starts[k + 1] if k + 1 < len(starts) else len(row)
            run = on[s:limit]
            end = s + (int(np.argmin(run)) if not run.all() else len(run))
            out.append((d["roll_low"] + key, int(s), int(end), 0))
    return sorted(out, key=lambda n: (n[1], n[0]))


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    while value > 0x7F:
        value >>= 7
        out.insert(0, (value & 0x7F) | 0x80)
    return bytes(out)


def _meta(kind: int, data: bytes, delta: int = 0) -> bytes:
    return _varlen(delta) + bytes([0xFF, kind]) + _varlen(len(data)) + data


def _track(events: bytes) -> bytes:
    return b"MTrk" + struct.pack(">I", len(events)) + events


def midi_bytes(item: np.ndarray, d: dict, metadata: dict | None = None) -> bytes:
    """A type-1 standard MIDI file as music.writing.midi_bytes writes it: a conductor track
    (tempo, 4/4, a 'genforge:' text event with the metadata) then one track per voice."""
    ticks = MIDI_TICKS_PER_QUARTER // d["steps_per_quarter"]
    tempo = round(60_000_000 / MIDI_TEMPO)
    conductor = _meta(0x51, tempo.to_bytes(3, "big")) + _meta(0x58, bytes([4, 2, 24, 8]))
    if metadata is not None:
        text = "genforge:" + json.dumps(metadata, sort_keys=True)
        conductor += _meta(0x01, text.encode("latin-1", "replace"))
    tracks = [_track(conductor + _meta(0x2F, b""))]
    voices = list(VOICES) if d["encoding"] == "satb" else ["piano"]
    found = notes(item, d)
    for v, name in enumerate(voices):
        channel = v if v < 9 else v + 1
        events = sorted([(n[1] * ticks, 1, n[0]) for n in found if n[3] == v]
                        + [(n[2] * ticks, 0, n[0]) for n in found if n[3] == v])
        data = _meta(0x03, name.encode()) + bytes([0, 0xC0 | channel, 0])
        now = 0
        for tick, on, pitch in events:  # offs before ons at the same tick
            data += _varlen(tick - now) + bytes([(0x90 if on else 0x80) | channel, pitch,
                                                 80 if on else 0])
            now = tick
        data += _meta(0x2F, b"", item.shape[1] * ticks - now)
        tracks.append(_track(data))
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), MIDI_TICKS_PER_QUARTER)
    return header + b"".join(tracks)


# -- pictures and text ---------------------------------------------------------------------------
def image_picture(item: np.ndarray) -> Image.Image:
    """uint8 [C, H, W] -> an L, RGB or RGBA picture."""
    return Image.fromarray(item[0] if item.shape[0] == 1 else item.transpose(1, 2, 0))


def level_picture(grid: np.ndarray, d: dict) -> Image.Image:
    colours = np.asarray(d["colours"], dtype=np.uint8)
    pixels = colours[np.asarray(grid, dtype=np.int64).clip(0, len(colours) - 1)]
    tile = d["tile_pixels"]
    return Image.fromarray(pixels.repeat(tile, 0).repeat(tile, 1))


def level_text(grid: np.ndarray, d: dict) -> str:
    """One line per row in the game's characters (levels.formats.format_grid)."""
    chars = np.array(d["chars"])
    return "".join("".join(chars[row]) + "\n" for row in np.asarray(grid, dtype=np.int64))


def music_picture(item: np.ndarray, d: dict) -> Image.Image:
    """A piano-roll picture: time across, pitch up, one colour per voice."""
    colours = ((214, 39, 40), (255, 127, 14), (44, 160, 44), (31, 119, 180))
    found = notes(item, d)
    low = min((n[0] for n in found), default=60) - 2
    high = max((n[0] for n in found), default=60) + 2
    pixels = np.full((high - low + 1, item.shape[1], 3), 255, dtype=np.uint8)
    for pitch, start, end, voice in found:
        pixels[high - pitch, start:end] = colours[voice % 4]
    return Image.fromarray(pixels.repeat(4, 0).repeat(4, 1))
