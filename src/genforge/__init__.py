"""genforge: create your own generative model from your own data.

    import genforge
    summary = genforge.train("fashion-mnist-sample", "runs/demo", minutes=4)
    model = genforge.load("runs/demo/model")
    images = model.generate(16, seed=0, out="samples")
    genforge.evaluate("runs/demo/model", "fashion-mnist-test", n=2000)

The whole surface is genforge.api (audit, verify, detect, ...); the names below are its most used.
"""
from . import progress  # standard library only
from .errors import CheckpointError, ConfigError, DataError, GenforgeError
from .version import __version__

# The names from genforge.api load on first use (PEP 562), so that `import genforge.runtime`
# runs where PyTorch is not installed: the runtime imports nothing of the PyTorch side.
_FROM_API = ("train", "distill", "load", "evaluate", "train_features", "resolve_config", "GenerativeModel")


def __getattr__(name: str):
    if name in _FROM_API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'genforge' has no attribute {name!r}")


__all__ = ["train", "distill", "load", "evaluate", "train_features", "resolve_config",
           "GenerativeModel", "progress", "GenforgeError", "ConfigError", "DataError",
           "CheckpointError", "__version__"]
