"""Clipping transforms: by value, by norm, by global norm, and unit-wise adaptive (AGC)."""

from __future__ import annotations

import keras
from keras import ops

from kerastrain._validation import check_positive
from kerastrain.optimizers import _hyper
from kerastrain.optimizers._protocol import Hyperparameter, Transform

__all__ = ["AdaptiveClip", "ClipByGlobalNorm", "ClipByNorm", "ClipByValue"]

_register = keras.saving.register_keras_serializable(package="kerastrain")


@_register
class ClipByValue(Transform):
    """Clip each gradient component into [−clip_value, clip_value].

    Args:
        clip_value: float > 0.
    """

    hyperparameters = (Hyperparameter("clip_value", "bound c of clip(g, −c, c)"),)
    gradient_transform = True

    def __init__(self, clip_value):
        self.clip_value = check_positive("clip_value", clip_value)

    def update(self, updates, context):
        return ops.clip(updates, -self.clip_value, self.clip_value)


def _safe_norm(squared_sum):
    positive = squared_sum > 0
    return ops.where(positive, ops.sqrt(ops.where(positive, squared_sum, 1.0)), 0.0)


@_register
class ClipByNorm(Transform):
    """Per variable: g ← g · c / max(‖g‖₂, c) (rescale when ‖g‖ > c).

    Args:
        clip_norm: float > 0.
    """

    hyperparameters = (Hyperparameter("clip_norm", "largest ‖g‖₂ per variable"),)
    gradient_transform = True

    def __init__(self, clip_norm):
        self.clip_norm = check_positive("clip_norm", clip_norm)

    def update(self, updates, context):
        norm = _safe_norm(ops.sum(ops.square(updates)))
        return updates * (self.clip_norm / ops.maximum(norm, self.clip_norm))


@_register
class ClipByGlobalNorm(Transform):
    """All variables together: g ← g · c / max(‖(g_1, …, g_n)‖₂, c).

    Args:
        clip_norm: float > 0.
    """

    hyperparameters = (Hyperparameter("clip_norm", "largest ‖(g_1, …, g_n)‖₂"),)
    gradient_transform = True

    def __init__(self, clip_norm):
        self.clip_norm = check_positive("clip_norm", clip_norm)

    def begin_step(self, optimizer, grads, variables, global_slots):
        squares = [ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads if g is not None]
        norm = ops.sqrt(ops.sum(ops.stack(squares)))
        return self.clip_norm / ops.maximum(norm, self.clip_norm)

    def update(self, updates, context):
        return updates * _hyper.cast(context.state, context.dtype)


def _unitwise_norm(value):
    """‖·‖₂ per output unit: all axes but the last (whole tensor for ndim <= 1)."""
    rank = len(value.shape)
    axes = None if rank <= 1 else tuple(range(rank - 1))
    return ops.sqrt(ops.sum(ops.square(value), axis=axes, keepdims=rank > 1))


@_register
class AdaptiveClip(Transform):
    """Unit-wise adaptive gradient clipping (AGC).

    g ← g · min(1, λ · max(‖w‖, ε) / ‖g‖) per output unit, norms over all axes
    but the last (the whole tensor for biases), as in the NFNet reference code.

    Args:
        clipping: λ > 0, default 0.01.
        epsilon: ε > 0, default 1e-3 (keeps zero-initialised weights moving).

    Reference: Brock et al. 2021, "High-Performance Large-Scale Image
    Recognition Without Normalization".
    """

    hyperparameters = (Hyperparameter("clipping", "λ, the largest ‖g‖/‖w‖ per unit"),
                       Hyperparameter("epsilon", "floor of ‖w‖"))
    gradient_transform = True

    def __init__(self, clipping=0.01, epsilon=1e-3):
        self.clipping = check_positive("clipping", clipping)
        self.epsilon = check_positive("epsilon", epsilon)

    def update(self, updates, context):
        weights = ops.convert_to_tensor(context.variable)
        max_norm = ops.maximum(_unitwise_norm(weights), self.epsilon) * self.clipping
        grad_norm = ops.maximum(_unitwise_norm(updates), 1e-6)
        return updates * ops.minimum(1.0, max_norm / grad_norm)
