"""Test-only access to peer libraries that genforge is checked against.

torch-fidelity 0.4.0 is installed without its dependencies (they would pull torchvision and a
second torch). Its package __init__ imports torchvision for dataset helpers that the metric and
feature-extractor code never call, so when torchvision is absent a stub stands in for it.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import pytest

_TORCHVISION_MODULES = ("torchvision", "torchvision.transforms", "torchvision.datasets",
                        "torchvision.transforms.functional")


class _Stub(types.ModuleType):
    """A module whose every attribute is another stub: enough for import-time references."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        module = _Stub(f"{self.__name__}.{name}")
        sys.modules[module.__name__] = module
        return module

    def __call__(self, *args, **kwargs):
        return self

    def __mro_entries__(self, bases):
        return (object,)


def import_torch_fidelity():
    """The torch_fidelity module, with torchvision stubbed when it is not installed; skips the
    calling test when torch-fidelity itself is not installed."""
    if importlib.util.find_spec("torch_fidelity") is None:
        pytest.skip("torch-fidelity is not installed (make test installs it)")
    # (find_spec would raise on a stub already in sys.modules: stubs have no __spec__)
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        for name in _TORCHVISION_MODULES:
            sys.modules.setdefault(name, _Stub(name))
    return importlib.import_module("torch_fidelity")
