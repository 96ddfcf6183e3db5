"""The train-step hook for optimizers that need the loss, not only the gradient.

Sharpness-aware minimization evaluates the gradient at perturbed weights; a
Newton / Hessian-free step needs Hessian-vector products. Inside `model.fit`
an optimizer only receives gradients, so `install_loss_aware_train_step(model)`
wraps the model's own train step: for the duration of each step it publishes a
`LossClosure` on the batch being trained, which the optimizer reads with
`current_loss_closure(self)` inside `apply()`. Everything else about the
step (metrics, batch-norm updates, loss scaling, distribution) is Keras's own.

The closure is stateless: it computes the loss at *given* trainable values,
so it works inside `tf.function`, `jax.jit` (the JAX step passes the traced
non-trainable state) and eager torch.
"""

from __future__ import annotations

import types

import keras

from kerastrain._backend._loss import make_loss_fn

_CLOSURE_ATTRIBUTE = "_kerastrain_loss_closure"
_INSTALLED_ATTRIBUTE = "_kerastrain_loss_aware_step"


def _backend_module():
    from kerastrain._backend import _module

    return _module()


class LossClosure:
    """The current batch's loss as a function of the trainable values.

    Attributes:
        x, y, sample_weight: the batch.
        variables: the model's trainable variables; ``values`` passed to the
            methods below are in this order (None when not given).
    """

    def __init__(self, loss_fn, x, y, sample_weight=None, non_trainable=None,
                 variables=None):
        self._loss_fn = loss_fn
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.variables = None if variables is None else list(variables)
        self._non_trainable = non_trainable
        backend = _backend_module()
        self._value_and_grad = backend.value_and_grad(self._loss)
        self._hvp = backend.hvp(self._loss)

    def _loss(self, values):
        return self._loss_fn(values, self.x, self.y, self.sample_weight, self._non_trainable)

    def loss(self, values):
        """The loss at ``values``."""
        return self._loss(values)

    def value_and_grad(self, values):
        """``(loss, grads)`` at ``values``."""
        return self._value_and_grad(values)

    def hvp(self, values, vectors):
        """Hessian of the loss at ``values`` times ``vectors``."""
        return self._hvp(values, vectors)


def current_loss_closure(optimizer):
    """The `LossClosure` of the step in progress, or None outside a hooked step."""
    return getattr(optimizer, _CLOSURE_ATTRIBUTE, None)


def _wrapped_optimizers(optimizer):
    """``optimizer`` and every optimizer it wraps, at any depth.

    Wrappers keep the wrapped optimizer in an attribute (Keras's
    `LossScaleOptimizer.inner_optimizer`, kerastrain's `SAM.optimizer`, ...):
    under ``mixed_float16`` Keras wraps a `SAM` in a `LossScaleOptimizer`, and
    the closure must still reach the `SAM`.
    """
    found, pending = [], [optimizer]
    while pending:
        current = pending.pop()
        if any(current is seen for seen in found):
            continue
        found.append(current)
        pending.extend(
            value for value in vars(current).values()
            if isinstance(value, keras.optimizers.Optimizer)
        )
    return found


def _publish(optimizer, closure):
    # Optimizers track attributes they are given; bypass that for the closure.
    for current in _wrapped_optimizers(optimizer):
        object.__setattr__(current, _CLOSURE_ATTRIBUTE, closure)


def install_loss_aware_train_step(model):
    """Wrap ``model.train_step`` so the optimizer can see the batch's loss.

    Idempotent. Call after `compile` (the optimizer must be set); the next
    `fit` uses the wrapped step. The model need not be built yet: the loss
    function is made on the first step. Recompiling keeps the hook (the
    closure uses the loss compiled at the time of the step). Returns the model.
    """
    if getattr(model, "optimizer", None) is None:
        raise ValueError(
            "Argument `model` must be compiled with an optimizer before the "
            "loss-aware train step is installed. Received: model.optimizer=None. "
            "Call `model.compile(optimizer=..., loss=...)` first."
        )
    if getattr(model, _INSTALLED_ATTRIBUTE, False):
        return model
    cache = {}

    def loss_fn(*args):
        # Made on first use (the model is built by then), again after a
        # recompile with another loss.
        if cache.get("loss") is not model.loss or "loss_fn" not in cache:
            cache["loss"] = model.loss
            cache["loss_fn"] = make_loss_fn(model, None, training=True)
        return cache["loss_fn"](*args)

    original = model.train_step
    unpack = keras.utils.unpack_x_y_sample_weight

    if keras.config.backend() == "jax":

        def train_step(self, state, data):
            x, y, sample_weight = unpack(data)
            closure = LossClosure(
                loss_fn, x, y, sample_weight, non_trainable=state[1],
                variables=self.trainable_variables,
            )
            _publish(self.optimizer, closure)
            try:
                return original(state, data)
            finally:
                _publish(self.optimizer, None)

    else:

        def train_step(self, data):
            x, y, sample_weight = unpack(data)
            closure = LossClosure(
                loss_fn, x, y, sample_weight, variables=self.trainable_variables
            )
            _publish(self.optimizer, closure)
            try:
                return original(data)
            finally:
                _publish(self.optimizer, None)

    model.train_step = types.MethodType(train_step, model)
    object.__setattr__(model, _INSTALLED_ATTRIBUTE, True)
    model.train_function = None
    return model
