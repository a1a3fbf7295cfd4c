"""Per-sample random streams, so that sample N is the same image whatever the batch it is drawn in."""
from __future__ import annotations

from collections.abc import Sequence

import torch


class SeededNoise:
    """One torch.Generator per sample (like EDM's StackedRandomGenerator); call it for noise."""

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.generators = [torch.Generator(self.device).manual_seed(int(s) % (1 << 63))
                           for s in seeds]

    def __len__(self) -> int:
        return len(self.generators)

    def __call__(self, item_shape: Sequence[int]) -> torch.Tensor:
        """Standard normal noise shaped [len(seeds), *item_shape], one independent stream per row."""
        return torch.stack([torch.randn(tuple(item_shape), generator=g, device=self.device)
                            for g in self.generators])
