"""Pure sampling functions: schedules, solvers, guidance and per-sample noise."""
from .consistency import MID_SIGMA, consistency_sigmas, sample_consistency
from .guidance import classifier_free, conditional
from .noise import SeededNoise
from .schedules import karras_sigmas
from .solvers import EVALS_PER_STEP, SAMPLERS

__all__ = ["SAMPLERS", "EVALS_PER_STEP", "SeededNoise", "karras_sigmas", "classifier_free",
           "conditional", "MID_SIGMA", "consistency_sigmas", "sample_consistency"]
