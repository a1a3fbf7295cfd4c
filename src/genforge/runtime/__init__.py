"""genforge.runtime: generate from an ONNX export without PyTorch.

Imports only numpy, onnxruntime, Pillow and the standard library (and genforge.errors and
genforge.version, which import nothing), so it runs where PyTorch cannot be shipped:

    from genforge.runtime import load
    model = load("runs/levels/model-onnx")        # genforge export runs/levels/model --format onnx
    levels = model.generate(16, seed=0, out="levels")

The samplers are genforge's (Euler/Heun/DPM++ on Karras sigmas, classifier-free guidance, the
GAN's truncation, masked sampling with the kind's defaults), seeds are per sample, and outputs and
records are written as `genforge generate` writes them. The noise is numpy's (see noise.py): a
seed gives the same item here every time, not the item PyTorch draws for it.
"""
from .model import RuntimeModel, load
from .noise import NOISE, SeedStreams

__all__ = ["load", "RuntimeModel", "SeedStreams", "NOISE"]
