"""Small composable gradient transforms (optax's `chain` is the model).

A transform turns the running update ``u`` (it starts as the gradient) into a
new one. It may own slots (one optimizer variable per model variable, created
in `build`) and per-step scalars (computed once per step in `begin_step`).
`Chain` runs them in order and subtracts the result from the weights:
Δθ = −u_final, the learning rate entering wherever `ScaleByLearningRate` sits.

Transforms marked ``gradient_transform = True`` (clipping, coupled weight
decay) also replace the *gradient* that later transforms accumulate
(second moments use ``context.gradient``, not the running update).
This module holds clipping, weight decay, learning rate and momentum; the
adaptive scalings are in `_scaling.py`.
"""

from __future__ import annotations

import keras
from keras import ops

from kerastrain._validation import argument_error, check_in_range, check_positive
from kerastrain.optimizers import _hyper

__all__ = [
    "AdaptiveClip",
    "ClipByGlobalNorm",
    "ClipByNorm",
    "ClipByValue",
    "Context",
    "Momentum",
    "ScaleByLearningRate",
    "Transform",
    "WeightDecay",
]

_register = keras.saving.register_keras_serializable(package="kerastrain")
_HYPER_KEYS = ("momentum", "beta_1")


class Context:
    """What a transform sees for one variable at one step."""

    __slots__ = ("optimizer", "variable", "gradient", "slots", "state", "step",
                 "learning_rate", "iterations", "dtype", "scale")

    def __init__(self, **values):
        for key, value in values.items():
            setattr(self, key, value)


class Transform:
    """Base class: a stateless identity transform with a config.

    ``scale_invariant = True`` declares update(s·u) = s·update(u) for a scalar
    s > 0; the chain then defers pending scalar factors (``context.scale``)
    past it instead of multiplying the tensor. A transform may multiply
    ``context.scale`` by a scalar instead of multiplying its output.
    """

    gradient_transform = False
    scale_invariant = False

    def build(self, optimizer, variables):
        """Create slots; return ``{slot name: [one variable per model variable]}``."""
        return {}

    def begin_step(self, optimizer, grads, variables, slots):
        """Per-step scalars shared by all variables (called once per step)."""
        return None

    def update(self, updates, context):
        return updates

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        config = {
            key: _hyper.deserialize(value) if key in _HYPER_KEYS else value
            for key, value in config.items()
        }
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


@_register
class ClipByValue(Transform):
    """Clip each gradient component into [−clip_value, clip_value].

    Args:
        clip_value: float > 0.
    """

    gradient_transform = True

    def __init__(self, clip_value):
        self.clip_value = check_positive("clip_value", clip_value)

    def update(self, updates, context):
        return ops.clip(updates, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


def _safe_norm(squared_sum):
    positive = squared_sum > 0
    return ops.where(positive, ops.sqrt(ops.where(positive, squared_sum, 1.0)), 0.0)


@_register
class ClipByNorm(Transform):
    """Per variable: g ← g · c / max(‖g‖₂, c) (rescale when ‖g‖ > c).

    Args:
        clip_norm: float > 0.
    """

    gradient_transform = True

    def __init__(self, clip_norm):
        self.clip_norm = check_positive("clip_norm", clip_norm)

    def update(self, updates, context):
        norm = _safe_norm(ops.sum(ops.square(updates)))
        return updates * (self.clip_norm / ops.maximum(norm, self.clip_norm))

    def get_config(self):
        return {"clip_norm": self.clip_norm}


@_register
class ClipByGlobalNorm(Transform):
    """All variables together: g ← g · c / max(‖(g_1, …, g_n)‖₂, c).

    Args:
        clip_norm: float > 0.
    """

    gradient_transform = True

    def __init__(self, clip_norm):
        self.clip_norm = check_positive("clip_norm", clip_norm)

    def begin_step(self, optimizer, grads, variables, slots):
        squares = [ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads if g is not None]
        norm = ops.sqrt(ops.sum(ops.stack(squares)))
        return self.clip_norm / ops.maximum(norm, self.clip_norm)

    def update(self, updates, context):
        return updates * _hyper.cast(context.state, context.dtype)

    def get_config(self):
        return {"clip_norm": self.clip_norm}


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

    gradient_transform = True

    def __init__(self, clipping=0.01, epsilon=1e-3):
        self.clipping = check_positive("clipping", clipping)
        self.epsilon = check_positive("epsilon", epsilon)

    def update(self, updates, context):
        weights = ops.convert_to_tensor(context.variable)
        max_norm = ops.maximum(_unitwise_norm(weights), self.epsilon) * self.clipping
        grad_norm = ops.maximum(_unitwise_norm(updates), 1e-6)
        return updates * ops.minimum(1.0, max_norm / grad_norm)

    def get_config(self):
        return {"clipping": self.clipping, "epsilon": self.epsilon}


@_register
class WeightDecay(Transform):
    """Weight decay: u ← u + λ·w.

    Decoupled (Loshchilov & Hutter 2019) where it sits after the adaptive
    scaling; with ``decoupled=False`` it is L2 regularisation folded into the
    gradient (later moments see g + λw, PyTorch's ``weight_decay``). Variables
    excluded with `optimizer.exclude_from_weight_decay` are skipped.

    Args:
        weight_decay: λ >= 0.
        decoupled: bool, default True.
    """

    def __init__(self, weight_decay, decoupled=True):
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self.decoupled = _hyper.check_bool("decoupled", decoupled)
        self.gradient_transform = not decoupled

    def update(self, updates, context):
        if not context.optimizer._use_weight_decay(context.variable):
            return updates
        return updates + ops.convert_to_tensor(context.variable) * self.weight_decay

    def get_config(self):
        return {"weight_decay": self.weight_decay, "decoupled": self.decoupled}


@_register
class ScaleByLearningRate(Transform):
    """u ← α_t · u, with α_t the optimizer's `learning_rate` (float, schedule, callable).

    Args:
        lr_decay: >= 0, default 0. With lr_decay > 0 the rate is
            α_t / (1 + lr_decay · t), t the steps done before this one:
            PyTorch Adagrad's ``lr_decay``.
    """

    scale_invariant = True

    def __init__(self, lr_decay=0.0):
        self.lr_decay = check_positive("lr_decay", lr_decay, allow_zero=True)

    def update(self, updates, context):
        rate = context.learning_rate
        if self.lr_decay:
            steps = ops.cast(context.iterations, context.dtype)
            rate = rate / (1.0 + self.lr_decay * steps)
        context.scale = context.scale * rate
        return updates

    def get_config(self):
        return {"lr_decay": self.lr_decay}


@_register
class Momentum(Transform):
    """Heavy-ball or Nesterov momentum on the running update.

    m ← μ_t·m + (1 − d)·u; u ← m (heavy ball) or u + μ_t·m (Nesterov). Placed
    after `ScaleByLearningRate` this is Keras's form (the rate inside the
    velocity), before it PyTorch's. With dampening d > 0 the first step sets
    m ← u, as `torch.optim.SGD` does.

    Args:
        momentum: μ in [0, 1] (as `keras.optimizers.SGD`), a `LearningRateSchedule`
            or a callable of the step.
        nesterov: bool, default False.
        dampening: d in [0, 1], default 0 (PyTorch's ``dampening``; not with Nesterov).
    """

    def __init__(self, momentum=0.9, nesterov=False, dampening=0.0):
        self.momentum = _hyper.check_momentum("momentum", momentum)
        self.nesterov = _hyper.check_bool("nesterov", nesterov)
        self.dampening = check_in_range("dampening", dampening, 0.0, 1.0)
        if self.nesterov and self.dampening:
            raise argument_error(
                "dampening", "be 0 with nesterov=True", dampening,
                "Nesterov momentum needs zero dampening (as in torch.optim.SGD).")

    def build(self, optimizer, variables):
        return {"momentum": optimizer.add_optimizer_variables(variables, "momentum")}

    def begin_step(self, optimizer, grads, variables, slots):
        return _hyper.resolve(self.momentum, optimizer.iterations, "float32")

    def update(self, updates, context):
        mu = _hyper.cast(context.state, context.dtype)
        velocity = context.slots["momentum"]
        if self.dampening:
            damped = velocity * mu + updates * (1.0 - self.dampening)
            new = ops.where(context.iterations == 0, updates, damped)
        else:
            new = velocity * mu + updates
        context.optimizer.assign(velocity, new)
        return updates + new * mu if self.nesterov else new

    def get_config(self):
        return {"momentum": _hyper.serialize(self.momentum), "nesterov": self.nesterov,
                "dampening": self.dampening}
