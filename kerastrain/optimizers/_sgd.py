"""The SGD transforms: learning rate, momentum (heavy ball, Nesterov), weight decay."""

from __future__ import annotations

import keras
from keras import ops

from kerastrain import _compat
from kerastrain._validation import argument_error, check_in_range, check_positive
from kerastrain.optimizers import _hyper
from kerastrain.optimizers._protocol import Hyperparameter, Scaled, Transform

__all__ = ["Momentum", "ScaleByLearningRate", "WeightDecay"]

_register = keras.saving.register_keras_serializable(package="kerastrain")


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

    hyperparameters = (Hyperparameter("weight_decay", "λ in u + λw"),
                       Hyperparameter("decoupled", "False: L2 folded into the gradient", "bool"))

    def __init__(self, weight_decay, decoupled=True):
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self.decoupled = _hyper.check_bool("decoupled", decoupled)

    @property
    def gradient_transform(self):
        return not self.decoupled

    def update(self, updates, context):
        if not _compat.use_weight_decay(context.optimizer, context.variable):
            return updates
        return updates + ops.convert_to_tensor(context.variable) * self.weight_decay


@_register
class ScaleByLearningRate(Transform):
    """u ← α_t · u, with α_t the optimizer's `learning_rate` (float, schedule, callable).

    Args:
        lr_decay: >= 0, default 0. With lr_decay > 0 the rate is
            α_t / (1 + lr_decay · t), t the steps done before this one:
            PyTorch Adagrad's ``lr_decay``.
    """

    hyperparameters = (Hyperparameter("lr_decay", "k in α_t / (1 + k·t)"),)
    scale_invariant = True

    def __init__(self, lr_decay=0.0):
        self.lr_decay = check_positive("lr_decay", lr_decay, allow_zero=True)

    def update(self, updates, context):
        rate = context.learning_rate
        if self.lr_decay:
            steps = ops.cast(context.iterations, context.dtype)
            rate = rate / (1.0 + self.lr_decay * steps)
        return Scaled(updates, rate)


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

    hyperparameters = (Hyperparameter("momentum", "μ, the velocity's decay", "schedulable"),
                       Hyperparameter("nesterov", "Nesterov's look-ahead form", "bool"),
                       Hyperparameter("dampening", "d, the update's weight is 1 − d"))
    slots = ("momentum",)

    def __init__(self, momentum=0.9, nesterov=False, dampening=0.0):
        self.momentum = _hyper.check_momentum("momentum", momentum)
        self.nesterov = _hyper.check_bool("nesterov", nesterov)
        self.dampening = check_in_range("dampening", dampening, 0.0, 1.0)
        if self.nesterov and self.dampening:
            raise argument_error(
                "dampening", "be 0 with nesterov=True", dampening,
                "Nesterov momentum needs zero dampening (as in torch.optim.SGD).")

    def begin_step(self, optimizer, grads, variables, global_slots):
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
