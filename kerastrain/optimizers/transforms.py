"""Gradient transforms to compose with `kerastrain.optimizers.Chain`."""

from kerastrain.optimizers._scaling import (
    AdadeltaScale,
    AdagradScale,
    FirstMoment,
    NadamMoment,
    RectifiedScale,
    ScaleByBelief,
    ScaleByRMS,
    ScaleByTrustRatio,
)
from kerastrain.optimizers._transforms import (
    AdaptiveClip,
    ClipByGlobalNorm,
    ClipByNorm,
    ClipByValue,
    Context,
    Momentum,
    ScaleByLearningRate,
    Transform,
    WeightDecay,
)

__all__ = [
    "AdadeltaScale",
    "AdagradScale",
    "AdaptiveClip",
    "ClipByGlobalNorm",
    "ClipByNorm",
    "ClipByValue",
    "Context",
    "FirstMoment",
    "Momentum",
    "NadamMoment",
    "RectifiedScale",
    "ScaleByBelief",
    "ScaleByLearningRate",
    "ScaleByRMS",
    "ScaleByTrustRatio",
    "Transform",
    "WeightDecay",
]
