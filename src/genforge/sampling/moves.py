"""Rule moves: how a content kind asks the discrete sampler to fix a sample that breaks one of
its rules (parallel fifths in a chorale, a Sokoban level with more boxes than goals).

A move names the positions to hide from the model while it judges the fix (`span`) and the
candidate edits; the sampler draws one edit in proportion to how much more (or less) likely the
model finds its new symbol than the old one at that position (and at the edit's `also`
positions, where an edit changes more than one symbol the model should judge). The kind decides
what is broken and which edits would mend it; the model decides which of them fits the music or
level.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Edit(NamedTuple):
    row: int
    col: int
    token: int                 # the new symbol at (row, col), scored by the model
    span_tokens: np.ndarray    # the span's symbols after the edit (row-major order)
    also: tuple[tuple[int, int, int], ...] = ()  # further (row, col, new symbol) scored with it


class TokenMove(NamedTuple):
    span: np.ndarray           # bool [H, W]: hidden while the model scores the edits
    edits: list[Edit]
