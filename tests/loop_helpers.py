"""What tests that drive the training loop directly share."""
from genforge.config import resolve_augment
from genforge.training import loop


def train(run_dir, config, dataset, family, modality, **hooks):
    """The loop as genforge.train calls it: with --augment auto resolved for the data first."""
    config = resolve_augment(config, len(dataset), dataset.item_shape)
    return loop.train(run_dir, config, dataset, family, modality, **hooks)
