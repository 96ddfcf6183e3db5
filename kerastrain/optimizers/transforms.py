"""Gradient transforms to compose with `kerastrain.optimizers.Chain`.

`Transform` is the base to subclass for a new one; `Slot`, `Hyperparameter`,
`Scaled` and `Context` are the words of its protocol (see `Transform`).
"""

from kerastrain.optimizers._clipping import (
    AdaptiveClip,
    ClipByGlobalNorm,
    ClipByNorm,
    ClipByValue,
)
from kerastrain.optimizers._protocol import (
    Context,
    Hyperparameter,
    Scaled,
    Slot,
    Transform,
    hyperparameter_table,
)
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
from kerastrain.optimizers._sgd import Momentum, ScaleByLearningRate, WeightDecay

__all__ = [
    "AdadeltaScale",
    "AdagradScale",
    "AdaptiveClip",
    "ClipByGlobalNorm",
    "ClipByNorm",
    "ClipByValue",
    "Context",
    "FirstMoment",
    "Hyperparameter",
    "Momentum",
    "NadamMoment",
    "RectifiedScale",
    "ScaleByBelief",
    "ScaleByLearningRate",
    "ScaleByRMS",
    "ScaleByTrustRatio",
    "Scaled",
    "Slot",
    "Transform",
    "WeightDecay",
    "hyperparameter_table",
]
