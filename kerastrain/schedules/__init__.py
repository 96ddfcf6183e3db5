"""kerastrain.schedules: learning-rate (and momentum) schedules, plateau reduction, plots.

Every schedule is a ``keras.optimizers.schedules.LearningRateSchedule``
written in `keras.ops`: pass it as ``learning_rate=`` of any Keras or
kerastrain optimizer; it is registered for saving, so a ``.keras`` model
reloads with its schedule without ``custom_objects``.
"""

from kerastrain.schedules._compose import Sequence, Warmup
from kerastrain.schedules._constant import Constant
from kerastrain.schedules._cyclical import (
    CyclicalLearningRate,
    ExponentialCyclicalLearningRate,
    Triangular2CyclicalLearningRate,
    TriangularCyclicalLearningRate,
)
from kerastrain.schedules._decay import (
    InverseTimeDecay,
    LinearDecay,
    MultiStepDecay,
    NaturalExponentialDecay,
    PiecewiseConstant,
    StepDecay,
)
from kerastrain.schedules._one_cycle import OneCycle, OneCycleMomentum
from kerastrain.schedules._plateau import ReduceLROnPlateau, Scaled
from kerastrain.schedules._plot import plot, values
from kerastrain.schedules._restarts import SGDR

__all__ = [
    "SGDR",
    "Constant",
    "CyclicalLearningRate",
    "ExponentialCyclicalLearningRate",
    "InverseTimeDecay",
    "LinearDecay",
    "MultiStepDecay",
    "NaturalExponentialDecay",
    "OneCycle",
    "OneCycleMomentum",
    "PiecewiseConstant",
    "ReduceLROnPlateau",
    "Scaled",
    "Sequence",
    "StepDecay",
    "Triangular2CyclicalLearningRate",
    "TriangularCyclicalLearningRate",
    "Warmup",
    "plot",
    "values",
]
