"""kerastrain.schedules: learning-rate (and momentum) schedules, `Scaled`, plots.

Every schedule is a ``keras.optimizers.schedules.LearningRateSchedule``
written in `keras.ops`: pass it as ``learning_rate=`` of any Keras or
kerastrain optimizer; it is registered for saving, so a ``.keras`` model
reloads with its schedule without ``custom_objects``.

``kerastrain.schedules.ReduceLROnPlateau`` is a deprecated alias of
`kerastrain.callbacks.ReduceLROnPlateau` (it is a callback): it works, and
warns once (DeprecationWarning).
"""

import warnings

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
from kerastrain.schedules._plot import plot, values
from kerastrain.schedules._restarts import SGDR
from kerastrain.schedules._scaled import Scaled

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
    "Scaled",
    "Sequence",
    "StepDecay",
    "Triangular2CyclicalLearningRate",
    "TriangularCyclicalLearningRate",
    "Warmup",
    "plot",
    "values",
]

# Deprecated names -> their new home. The set of names already warned about is
# process-wide on purpose: "warn once" is about the process, as Python's own
# DeprecationWarning default filter is.
_MOVED = {"ReduceLROnPlateau": "kerastrain.callbacks"}
_WARNED = set()


def __getattr__(name):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    target = _MOVED[name]
    if name not in _WARNED:
        _WARNED.add(name)
        warnings.warn(
            f"kerastrain.schedules.{name} moved to {target}.{name} (it is a callback); "
            f"the old name will be removed in a future release. "
            f"Use `from {target} import {name}`.",
            DeprecationWarning,
            stacklevel=2,
        )
    return getattr(importlib.import_module(target), name)
