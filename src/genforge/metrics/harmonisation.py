"""Harmonisation against Bach: a melody's generated alto, tenor and bass beside the composer's
own, step by step, with the voice-leading errors of the setting.

Both items are SATB codes [4, T] of the same piece (the soprano given, so it agrees). Per voice,
over the 16th-note steps where Bach's voice sounds: the share where the generated voice sounds the
same pitch, and the share where it sounds the same pitch class (an octave off counts). The errors
are those of metrics.music: parallel fifths and octaves (counts per piece), voice crossings and
notes out of range (shares). Pure functions; the benchmark (benchmarks/bench_music.py
--harmonisation) runs them on the held-out test chorales for a model and for the Markov baseline.
"""
from __future__ import annotations

import math

import numpy as np

from ..music import representation as rep
from .music import out_of_range, parallel_fifths, parallel_octaves, voice_crossing

HARMONY_VOICES = (1, 2, 3)  # alto, tenor, bass: what a harmonisation of a soprano writes


def voice_agreement(generated, reference) -> dict[str, dict[str, float]]:
    """Per voice (alto, tenor, bass): {"pitch", "pitch_class"} shares of the steps where the
    reference voice sounds at which the generated voice sounds that pitch (that pitch class);
    NaN where the reference voice never sounds."""
    gen, ref = rep.satb_pitches(generated).astype(int), rep.satb_pitches(reference).astype(int)
    if gen.shape != ref.shape:
        raise ValueError(f"a harmonisation {gen.shape} and its reference {ref.shape} differ in "
                         "shape")
    out = {}
    for v in HARMONY_VOICES:
        sounding = ref[v] >= 0
        if not sounding.any():
            out[rep.VOICES[v]] = {"pitch": math.nan, "pitch_class": math.nan}
            continue
        same = gen[v][sounding] == ref[v][sounding]
        same_class = (gen[v][sounding] >= 0) & (gen[v][sounding] % 12 == ref[v][sounding] % 12)
        out[rep.VOICES[v]] = {"pitch": float(same.mean()), "pitch_class": float(same_class.mean())}
    return out


def errors(item) -> dict[str, float]:
    """The setting's voice-leading errors (metrics.music's rules)."""
    return {"parallel_fifths": float(parallel_fifths(item)),
            "parallel_octaves": float(parallel_octaves(item)),
            "voice_crossing": voice_crossing(item), "out_of_range": out_of_range(item)}


def harmonisation_scores(generated: list, references: list) -> dict[str, float]:
    """Means over pieces (NaN skipped) of every agreement and error, flat: "alto_pitch",
    "alto_pitch_class", ..., "parallel_fifths", ... Pieces may differ in length."""
    if len(generated) != len(references) or not references:
        raise ValueError(f"need one harmonisation per reference piece, got {len(generated)} for "
                         f"{len(references)}")
    rows = []
    for gen, ref in zip(generated, references):
        row = {f"{voice}_{k}": v for voice, d in voice_agreement(gen, ref).items()
               for k, v in d.items()}
        rows.append({**row, **errors(gen)})
    return {k: float(np.nanmean([r[k] for r in rows])) if any(not math.isnan(r[k]) for r in rows)
            else math.nan for k in rows[0]}
