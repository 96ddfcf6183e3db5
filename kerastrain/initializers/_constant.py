"""Constant initializers, with the chapter's symmetry warning."""

from __future__ import annotations

import warnings

import keras
from keras import ops

from kerastrain._validation import check_finite_number, check_positive
from kerastrain.initializers._register import register


class SymmetricInitializationWarning(UserWarning):
    """A kernel was initialized so that all of its units are identical."""


def _warn_if_symmetric(initializer, shape):
    """Warn when a kernel (rank >= 2, more than one unit) gets identical columns."""
    shape = tuple(int(dim) for dim in shape)
    if len(shape) < 2 or shape[-1] < 2:
        return
    warnings.warn(
        f"{type(initializer).__name__}(value={initializer.value!r}) initializes all "
        f"{shape[-1]} units of a kernel of shape {shape} identically: in a hidden layer "
        "they compute the same output, get the same gradient and stay identical "
        "(\"never initialize to 0\"). Use a random initializer such as "
        "kerastrain.initializers.GlorotUniform or HeNormal for hidden kernels; "
        "constants are meant for biases.",
        SymmetricInitializationWarning,
        stacklevel=3,
    )


@register
class Constant(keras.initializers.Initializer):
    """Fills the tensor with ``value``; warns when used for a multi-unit kernel.

    ``W_ij = value``. For a bias (rank 1) this is the usual choice. For a kernel
    (rank >= 2) with more than one unit, every unit of the layer would compute the
    same function and receive the same gradient (the symmetry problem), so the
    call — which happens when the layer is built — emits a
    `SymmetricInitializationWarning`. A single-unit kernel does not warn.

    Args:
        value: the constant, a finite number (default 0.0).

    Example:
        >>> layer = keras.layers.Dense(8, bias_initializer=Constant(0.1))
    """

    def __init__(self, value=0.0):
        self.value = check_finite_number("value", value)

    def __call__(self, shape, dtype=None):
        _warn_if_symmetric(self, shape)
        return ops.full(shape, self.value, dtype=dtype or keras.config.floatx())

    def get_config(self):
        return {"value": self.value}


@register
class Zeros(Constant):
    """All zeros: the usual bias initializer, never a hidden kernel's (it warns there).

    Example:
        >>> layer = keras.layers.Dense(8, bias_initializer=Zeros())
    """

    def __init__(self):
        super().__init__(value=0.0)

    def get_config(self):
        return {}


@register
class ReLUBias(Constant):
    """Small positive bias for ReLU units (default 0.01), so few start dead.

    ``b_j = value > 0``: every ReLU starts in its active region for inputs near
    zero (cs231n's remedy for dead ReLUs).

    Args:
        value: the positive bias, > 0 (default 0.01).

    Example:
        >>> layer = keras.layers.Dense(64, activation="relu", bias_initializer=ReLUBias())
    """

    def __init__(self, value=0.01):
        super().__init__(value=check_positive("value", value))
