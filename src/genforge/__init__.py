"""genforge: create your own generative model from your own data.

    import genforge
    summary = genforge.train("fashion-mnist-sample", "runs/demo", minutes=4)
    model = genforge.load("runs/demo/model")
    images = model.generate(16, seed=0, out="samples")
    genforge.evaluate("runs/demo/model", "fashion-mnist-test", n=2000)

The whole surface is genforge.api (audit, verify, detect, ...); the names below are its most used.
"""
from . import progress
from .api import (GenerativeModel, distill, evaluate, load, resolve_config, train,
                  train_features)
from .errors import CheckpointError, ConfigError, DataError, GenforgeError
from .version import __version__

__all__ = ["train", "distill", "load", "evaluate", "train_features", "resolve_config",
           "GenerativeModel", "progress", "GenforgeError", "ConfigError", "DataError",
           "CheckpointError", "__version__"]
