"""Rendering items to sound: FluidSynth with a General MIDI soundfont when one is installed,
else a small built-in additive synthesiser. Both write 16-bit PCM WAV atomically.

FluidSynth runs as a subprocess (`fluidsynth -ni -F out.wav ...`): no Python binding to build,
and a crash in the synthesiser cannot take the caller down.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from .. import io
from . import representation as rep
from .writing import DEFAULT_TEMPO, write_midi

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
SAMPLE_RATE = 44100
ATTACK, RELEASE = 0.01, 0.08   # seconds; the release rings past the last note's end
HARMONICS = (1.0, 0.0, 1 / 9, 0.0, 1 / 25)  # odd harmonics falling as 1/n^2: a soft triangle


def find_soundfont() -> str | None:
    """The first General MIDI soundfont installed, or None."""
    return next((p for p in SOUNDFONTS if os.path.isfile(p)), None)


def choose_engine(engine: str = "auto") -> str:
    """'fluidsynth' when asked for or (auto) when it and a soundfont are installed, else 'builtin'."""
    if engine not in ("auto", "fluidsynth", "builtin"):
        raise ValueError(f"engine must be auto, fluidsynth or builtin, got {engine!r}")
    available = shutil.which("fluidsynth") is not None and find_soundfont() is not None
    if engine == "fluidsynth" and not available:
        raise RuntimeError("fluidsynth or a soundfont is not installed "
                           "(apt-get install fluidsynth fluid-soundfont-gm)")
    return "fluidsynth" if engine == "fluidsynth" or (engine == "auto" and available) else "builtin"


def duration_seconds(item, tempo: float = DEFAULT_TEMPO) -> float:
    """How long an item plays: its steps at `tempo` quarter notes per minute."""
    return np.asarray(item).shape[1] * 60.0 / tempo / rep.STEPS_PER_QUARTER


def synthesize(notes: list[rep.Note], seconds_per_step: float, length: float,
               sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float samples in [-1, 1]: each note a few odd harmonics with a linear attack and
    release; `length` seconds plus the release tail. Equal-tempered, A4 = 440 Hz."""
    total = int(round((length + RELEASE) * sample_rate))
    out = np.zeros(total, dtype=np.float64)
    for n in notes:
        start = int(round(n.start * seconds_per_step * sample_rate))
        hold = int(round((n.end - n.start) * seconds_per_step * sample_rate))
        count = min(hold + int(RELEASE * sample_rate), total - start)
        if count <= 0:
            continue
        t = np.arange(count) / sample_rate
        freq = 440.0 * 2 ** ((n.pitch - 69) / 12)
        wave_ = sum(a * np.sin(2 * np.pi * freq * (k + 1) * t) for k, a in enumerate(HARMONICS) if a)
        envelope = np.minimum(1.0, t / ATTACK)
        release = np.clip(1.0 - (np.arange(count) - hold) / (RELEASE * sample_rate), 0.0, 1.0)
        out[start:start + count] += wave_ * envelope * release
    peak = np.abs(out).max() if total else 0.0
    return out * (0.8 / peak) if peak > 0 else out  # normalised: loudness does not track polyphony


def wav_bytes_to(path: str, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float samples as a 16-bit PCM WAV file at path (not atomic: see render_wav)."""
    pcm = (np.clip(samples, -1, 1) * 32767).round().astype("<i2")
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())


def render_wav(item, path: Path, engine: str = "auto", tempo: float = DEFAULT_TEMPO,
               sample_rate: int = SAMPLE_RATE, timeout: float = 120.0) -> str:
    """Render one item to a WAV file atomically; returns the engine used ('fluidsynth' or
    'builtin'). The file lasts the item's duration plus a short release (FluidSynth's own)."""
    item = np.asarray(item)
    chosen = choose_engine(engine)
    if chosen == "builtin":
        samples = synthesize(rep.item_to_notes(item), 60.0 / tempo / rep.STEPS_PER_QUARTER,
                             duration_seconds(item, tempo), sample_rate)
        io.write_with(path, lambda tmp: wav_bytes_to(tmp, samples, sample_rate))
        return chosen
    with tempfile.TemporaryDirectory() as scratch:
        midi = write_midi(item, Path(scratch) / "in.mid", tempo=tempo)

        def run(tmp: str) -> None:
            result = subprocess.run(
                ["fluidsynth", "-ni", "-q", "-T", "wav", "-O", "s16", "-g", "0.6",
                 "-r", str(sample_rate), "-F", tmp, find_soundfont(), str(midi)],
                capture_output=True, text=True, timeout=timeout)
            if result.returncode != 0 or os.path.getsize(tmp) <= 44:
                raise RuntimeError(f"fluidsynth failed ({result.returncode}): "
                                   f"{(result.stderr or result.stdout).strip()[:300]}")
        io.write_with(path, run)
    return chosen
