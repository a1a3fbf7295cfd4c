"""genforge: create your own generative model from your own data.

    import genforge
    summary = genforge.train("fashion-mnist-sample", "runs/demo", minutes=4)
    model = genforge.load("runs/demo/model")
    images = model.generate(16, seed=0, out="samples")
"""
from .api import GenerativeModel, load, resolve_config, train
from .errors import CheckpointError, ConfigError, DataError, GenforgeError
from .version import __version__

__all__ = ["train", "load", "resolve_config", "GenerativeModel", "GenforgeError", "ConfigError",
           "DataError", "CheckpointError", "__version__"]
