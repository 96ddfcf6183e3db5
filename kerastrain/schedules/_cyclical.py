"""Cyclical learning rates (Smith 2017), drop-in replacements for TensorFlow Addons'."""

from __future__ import annotations

import math

import keras
from keras import ops

from kerastrain._validation import argument_error, check_one_of, type_error
from kerastrain.schedules._base import (
    Schedule,
    check_gamma,
    check_rate,
    check_steps,
    deserialize,
    serialize,
)

_register = keras.saving.register_keras_serializable(package="kerastrain")

_SCALE_MODES = ("cycle", "iterations")


@_register
class CyclicalLearningRate(Schedule):
    """Cyclical learning rate: a triangle between two rates, scaled by ``scale_fn``.

    Formula (Smith 2017, and TensorFlow Addons' implementation)::

        cycle = floor(1 + t / (2 * step_size))
        x = |t / step_size - 2 * cycle + 1|
        lr(t) = initial + (maximal - initial) * max(0, 1 - x) * scale_fn(s)

    with ``s = cycle`` when ``scale_mode="cycle"`` and ``s = t`` when
    ``scale_mode="iterations"``. A drop-in replacement for
    ``tfa.optimizers.CyclicalLearningRate`` (same name and arguments); the
    values equal PyTorch's ``CyclicLR(base_lr, max_lr, step_size_up=step_size)``.

    Args:
        initial_learning_rate: the lower rate of the cycle, > 0.
        maximal_learning_rate: the upper rate, >= ``initial_learning_rate``.
        step_size: steps in half a cycle, an integer >= 1 (Smith: 2-10 epochs).
        scale_fn: a function of ``s`` (written with `keras.ops` or plain
            arithmetic) scaling the amplitude. To save it in a ``.keras``
            file, register it with ``keras.saving.register_keras_serializable``.
        scale_mode: ``"cycle"`` (default) or ``"iterations"``: what ``s`` is.
        name: optional name scope.

    Example:
        >>> @keras.saving.register_keras_serializable(package="my_project")
        ... def halve(cycle):
        ...     return 0.5 ** (cycle - 1)
        >>> schedule = CyclicalLearningRate(1e-4, 1e-2, step_size=2000, scale_fn=halve)

    Reference:
        Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017.
    """

    _takes_scale_fn = True

    def __init__(self, initial_learning_rate, maximal_learning_rate, step_size, scale_fn,
                 scale_mode="cycle", name="CyclicalLearningRate"):
        super().__init__(name)
        self.initial_learning_rate = check_rate("initial_learning_rate", initial_learning_rate)
        self.maximal_learning_rate = check_rate("maximal_learning_rate", maximal_learning_rate)
        if self.maximal_learning_rate < self.initial_learning_rate:
            raise argument_error(
                "maximal_learning_rate",
                f"be >= initial_learning_rate={initial_learning_rate!r}",
                maximal_learning_rate,
                "Swap the two rates: the cycle goes from the initial (lower) rate up to "
                "the maximal one.",
            )
        self.step_size = check_steps("step_size", step_size)
        self.scale_mode = check_one_of("scale_mode", scale_mode, _SCALE_MODES)
        if self._takes_scale_fn and not callable(scale_fn):
            raise type_error("scale_fn", "a callable", scale_fn,
                             "Pass e.g. `scale_fn=lambda cycle: 0.5 ** (cycle - 1)`.")
        self.scale_fn = scale_fn

    def _scale(self, value):
        return self.scale_fn(value)

    def _compute(self, step, dtype):
        step_size = float(self.step_size)
        cycle = ops.floor(1.0 + step / (2.0 * step_size))
        x = ops.abs(step / step_size - 2.0 * cycle + 1.0)
        mode_step = cycle if self.scale_mode == "cycle" else step
        amplitude = self.maximal_learning_rate - self.initial_learning_rate
        scale = ops.cast(self._scale(mode_step), dtype)
        return self.initial_learning_rate + amplitude * ops.maximum(0.0, 1.0 - x) * scale

    def _cycle_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "maximal_learning_rate": self.maximal_learning_rate,
            "step_size": self.step_size,
            "scale_mode": self.scale_mode,
            **self._base_config(),
        }

    def get_config(self):
        # As TFA's, the config holds the callable itself (in a `ScaleFunction`, which
        # calls it), so `from_config(get_config())` works for any callable; Keras
        # serializes it (saving) by its registered name only.
        return {"scale_fn": ScaleFunction(self.scale_fn), **self._cycle_config()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        scale_fn = deserialize(config["scale_fn"])  # a dict in a saved file
        config["scale_fn"] = scale_fn.function if isinstance(scale_fn, ScaleFunction) \
            else scale_fn
        return cls(**config)


def _is_registered(function):
    name = keras.saving.get_registered_name(function)
    return keras.saving.get_registered_object(name) is function


@_register
class ScaleFunction:
    """A `CyclicalLearningRate`'s ``scale_fn`` in its config: calls the function.

    Serializing it (saving a model) needs the function registered with
    ``keras.saving.register_keras_serializable``: then the file names it and
    loading finds it; otherwise serializing raises a ValueError saying so.
    """

    def __init__(self, function):
        if isinstance(function, dict):  # as saved
            function = keras.saving.deserialize_keras_object(function)
        self.function = function

    def __call__(self, *args, **kwargs):
        return self.function(*args, **kwargs)

    def __eq__(self, other):
        return isinstance(other, ScaleFunction) and other.function is self.function

    def __hash__(self):
        return hash(self.function)

    def get_config(self):
        if not _is_registered(self.function):
            raise argument_error(
                "scale_fn", "be registered with keras.saving.register_keras_serializable to "
                "be saved", self.function,
                "Decorate it: @keras.saving.register_keras_serializable(package=\"my_project\") "
                "above `def scale_fn(x): ...` (a lambda cannot be registered: write a def).")
        return {"function": serialize(self.function)}

    @classmethod
    def from_config(cls, config):
        return cls(config["function"])


@_register
class TriangularCyclicalLearningRate(CyclicalLearningRate):
    """Smith's ``triangular`` policy: the triangle at constant amplitude.

    Formula: `CyclicalLearningRate` with ``scale_fn(s) = 1``. Equals PyTorch's
    ``CyclicLR(mode="triangular")`` and ``tfa.optimizers.TriangularCyclicalLearningRate``.

    Args:
        initial_learning_rate, maximal_learning_rate, step_size, scale_mode, name:
            as in `CyclicalLearningRate`.

    Example:
        >>> schedule = TriangularCyclicalLearningRate(1e-4, 1e-2, step_size=2000)

    Reference:
        Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017.
    """

    _takes_scale_fn = False

    def __init__(self, initial_learning_rate, maximal_learning_rate, step_size,
                 scale_mode="cycle", name="TriangularCyclicalLearningRate"):
        super().__init__(initial_learning_rate, maximal_learning_rate, step_size,
                         scale_fn=None, scale_mode=scale_mode, name=name)

    def _scale(self, value):
        return ops.ones_like(value)

    def get_config(self):
        return self._cycle_config()

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@_register
class Triangular2CyclicalLearningRate(TriangularCyclicalLearningRate):
    """Smith's ``triangular2`` policy: the amplitude halves every cycle.

    Formula: `CyclicalLearningRate` with ``scale_fn(s) = 1 / 2 ** (s - 1)``.
    Equals PyTorch's ``CyclicLR(mode="triangular2")`` and
    ``tfa.optimizers.Triangular2CyclicalLearningRate``.

    Args:
        initial_learning_rate, maximal_learning_rate, step_size, scale_mode, name:
            as in `CyclicalLearningRate`.

    Example:
        >>> schedule = Triangular2CyclicalLearningRate(1e-4, 1e-2, step_size=2000)

    Reference:
        Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017.
    """

    def __init__(self, initial_learning_rate, maximal_learning_rate, step_size,
                 scale_mode="cycle", name="Triangular2CyclicalLearningRate"):
        super().__init__(initial_learning_rate, maximal_learning_rate, step_size,
                         scale_mode=scale_mode, name=name)

    def _scale(self, value):
        return 1.0 / ops.power(2.0, value - 1.0)


@_register
class ExponentialCyclicalLearningRate(CyclicalLearningRate):
    """Smith's ``exp_range`` policy: the amplitude decays as ``gamma ** s``.

    Formula: `CyclicalLearningRate` with ``scale_fn(s) = gamma ** s`` and, by
    default, ``scale_mode="iterations"`` (``s`` is the step). Equals PyTorch's
    ``CyclicLR(mode="exp_range", gamma=gamma)`` and
    ``tfa.optimizers.ExponentialCyclicalLearningRate``.

    Args:
        initial_learning_rate, maximal_learning_rate, step_size, name:
            as in `CyclicalLearningRate`.
        scale_mode: ``"iterations"`` (default) or ``"cycle"``.
        gamma: the per-``s`` amplitude factor, in (0, 1]. Default 1.0.

    Example:
        >>> schedule = ExponentialCyclicalLearningRate(1e-4, 1e-2, 2000, gamma=0.9995)

    Reference:
        Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017.
    """

    _takes_scale_fn = False

    def __init__(self, initial_learning_rate, maximal_learning_rate, step_size,
                 scale_mode="iterations", gamma=1.0, name="ExponentialCyclicalLearningRate"):
        self.gamma = check_gamma("gamma", gamma)
        super().__init__(initial_learning_rate, maximal_learning_rate, step_size,
                         scale_fn=None, scale_mode=scale_mode, name=name)

    def _scale(self, value):
        # gamma ** s as exp(s · ln gamma), ln gamma in float64: a float32 gamma is off by
        # up to 3e-8, which gamma ** s multiplies by s (3e-5 relative at s = 1000).
        return ops.exp(value * ops.cast(math.log(self.gamma), value.dtype))

    def get_config(self):
        return {"gamma": self.gamma, **self._cycle_config()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
