"""--reject-copies: samples whose nearest training item is a likely copy are replaced by the next
seeds' samples, with the same nearest/second-nearest ratio test as the memorisation metric."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import GenforgeError
from ..metrics import maths
from ..metrics.registry import COPY_RATIO, pixel_vectors

MAX_REJECTION_ROUNDS = 10  # redraws at most this often before calling it memorisation

Draw = Callable[[int, list[int], torch.Tensor | None], torch.Tensor]  # (count, seeds, labels)


def reject_copies(model, items: torch.Tensor, seeds: list[int], labels: torch.Tensor | None,
                  draw: Draw, train_data: str | None) -> tuple[torch.Tensor, list[int], list[dict]]:
    """Items with every likely copy redrawn from a fresh seed, their seeds, and what was
    rejected (seed, nearest training item, ratio); raises when copies persist."""
    training = pixel_vectors(model.training_items(train_data), model.device)
    items, seeds, rejected = items.clone(), list(seeds), []
    next_seed, todo = max(seeds) + 1, list(range(len(items)))
    for _ in range(MAX_REJECTION_ROUNDS):
        nearest = maths.nearest_training_items(pixel_vectors(items[todo], model.device), training)
        found = [(i, int(j), float(r)) for i, j, r in zip(todo, nearest.index, nearest.ratio)
                 if r < COPY_RATIO]
        if not found:
            return items, seeds, rejected
        rejected += [{"seed": seeds[i], "nearest_training_item": j, "ratio": round(r, 4)}
                     for i, j, r in found]
        todo = [i for i, _, _ in found]
        for i in todo:
            seeds[i], next_seed = next_seed, next_seed + 1
        items[todo] = draw(len(todo), [seeds[i] for i in todo],
                           None if labels is None else labels[todo])
    raise GenforgeError(f"{len(todo)} samples were still copies of training items after "
                        f"{MAX_REJECTION_ROUNDS} redraws: this model memorises its data")
