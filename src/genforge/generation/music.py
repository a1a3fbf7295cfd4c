"""Music's own generation: harmonising a melody (or completing some voices of a four-part file)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..music.representation import VOICES
from .inpaint import inpaint_file

VOICE_LETTERS = "SATB"


def harmonize(model, melody: str | Path, *, n: int = 4, seed: int = 0, voices: str = "S",
              sign: bool = True, signer=None, audio: bool = False,
              out: str | Path | None = None, **sampling: Any) -> torch.Tensor:
    """n four-part settings of a melody (or of any voices of a four-part file): the given
    voices come back exactly, the model fills in the rest by inpainting. voices: which parts
    of the file are given, as letters of SATB (a one-part file is the soprano). sampling: the
    family's inpainting options (diffusion: steps, resample; discrete: sampler, steps,
    temperature, rules: re-pitch generated notes that make parallel fifths or octaves)."""
    if model.spec.modality != "music":
        raise ConfigError(f"harmonising needs a music model; this is a {model.spec.modality} "
                          f"{model.config.family} model")
    letters = voices.upper()
    given_voices = tuple(sorted({VOICE_LETTERS.index(v) for v in letters if v in VOICE_LETTERS}))
    if not given_voices or len(given_voices) != len(set(letters)) or len(given_voices) == len(VOICES):
        raise ConfigError(f"--voices takes one to three of the letters S, A, T, B, got {voices!r}")
    return inpaint_file(model, melody, n=n, seed=seed, how={"voices": given_voices},
                        params={"harmonize": Path(melody).name, "given_voices": letters},
                        role="melody" if letters == "S" else f"given voices {letters}",
                        sampling=sampling, sign=sign, signer=signer, audio=audio, out=out)
