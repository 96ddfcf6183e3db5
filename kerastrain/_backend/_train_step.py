"""The train-step hook for optimizers that need the loss, not only the gradient.

Sharpness-aware minimization evaluates the gradient at perturbed weights; a
Newton / Hessian-free step needs Hessian-vector products. Inside `model.fit`
an optimizer only receives gradients, so `install_loss_aware_train_step(model)`
wraps *that model's* train step (an attribute of the instance; no class is
changed): for the duration of each step whose optimizer needs it, it publishes
a `LossClosure` on the batch being trained, which the optimizer reads with
`current_loss_closure(self)` inside `apply()`. Everything else about the
step (metrics, batch-norm updates, loss scaling, distribution) is Keras's own.
Keras gives an optimizer no way to reach the model it trains, so this is one
explicit call per model (`kerastrain.optimizers.prepare(model)`).

The closure is stateless: it computes the loss at *given* trainable values,
so it works inside `tf.function`, `jax.jit` (the JAX step passes the traced
non-trainable state) and eager torch.
"""

from __future__ import annotations

import types

import keras
from keras import ops

from kerastrain._backend._loss import make_loss_fn

_CLOSURE_ATTRIBUTE = "_kerastrain_loss_closure"
_INSTALLED_ATTRIBUTE = "_kerastrain_loss_aware_step"
_LOSS_FN_ATTRIBUTE = "_kerastrain_loss_fn"


def _backend_module():
    from kerastrain._backend import _module

    return _module()


class LossClosure:
    """The current batch's loss as a function of the trainable values.

    Attributes:
        x, y, sample_weight: the batch.
        variables: the model's trainable variables; ``values`` passed to the
            methods below are in this order (None when not given). May be
            given as a zero-argument callable, read when accessed (a model
            built by its first train step has no variables before it).
    """

    def __init__(self, loss_fn, x, y, sample_weight=None, non_trainable=None,
                 variables=None):
        self._loss_fn = loss_fn
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self._variables = variables if callable(variables) or variables is None else list(
            variables
        )
        self._non_trainable = non_trainable
        backend = _backend_module()
        self._value_and_grad = backend.value_and_grad(self._loss)
        self._hvp = backend.hvp(self._loss)

    @property
    def variables(self):
        if callable(self._variables):
            return list(self._variables())
        return self._variables

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


_FIX = (
    "Call `kerastrain.optimizers.prepare(model)` once after `model.compile(...)` "
    "(and after loading a saved model) and before `model.fit(...)`."
)


def require_loss_closure(optimizer):
    """The current step's `LossClosure`, or a ValueError naming the one-line fix."""
    closure = current_loss_closure(optimizer)
    if closure is None:
        raise ValueError(
            f"`{type(optimizer).__name__}` needs the loss of the batch being trained, "
            "but it was applied outside a train step that provides it (no weights "
            f"were changed). {_FIX}"
        )
    if closure.variables is None:
        raise ValueError(
            "The loss closure of this train step does not list the model's "
            f"trainable variables, which `{type(optimizer).__name__}` needs. {_FIX}"
        )
    return closure


def evaluate_at(closure, variables, deltas, function):
    """Call ``function(values)`` of the closure at the weights ``variables + deltas``.

    ``variables`` are the optimizer's variables (a subset of the model's, any
    order); ``deltas`` are aligned with them (None: no change). ``function``
    is e.g. ``closure.value_and_grad``; returns ``(result, position)`` where
    ``position[i]`` is the index of ``variables[i]`` in the model's list.
    """
    model_index = {id(variable): j for j, variable in enumerate(closure.variables)}
    position = []
    for variable in variables:
        if id(variable) not in model_index:
            raise ValueError(
                f"The optimizer updates the variable {variable.path!r}, which is not "
                "a trainable variable of the model being trained, so the loss cannot "
                "be differentiated with respect to it. Build the optimizer on "
                "`model.trainable_variables` (what `model.fit` does)."
            )
        position.append(model_index[id(variable)])
    values = [variable.value for variable in closure.variables]
    for j, delta in zip(position, deltas):
        if delta is not None:
            values[j] = ops.add(values[j], ops.cast(delta, values[j].dtype))
    return function(values), position


def _wrapped_optimizers(optimizer):
    """``optimizer`` and every optimizer it wraps, at any depth.

    Wrappers keep the wrapped optimizer in an attribute (Keras's
    `LossScaleOptimizer.inner_optimizer`, kerastrain's `SAM.inner_optimizer`, ...):
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


def requires_loss_closure(optimizer):
    """True when ``optimizer`` or an optimizer it wraps reads the loss closure.

    Such optimizers set the class attribute ``requires_loss_closure = True``.
    """
    return optimizer is not None and any(
        getattr(current, "requires_loss_closure", False)
        for current in _wrapped_optimizers(optimizer)
    )


def _loss_function(model):
    cache = {}

    def loss_fn(*args):
        # Made on first use (the model is built by then), again after a
        # recompile with another loss.
        if cache.get("loss") is not model.loss or "loss_fn" not in cache:
            cache["loss"] = model.loss
            cache["loss_fn"] = make_loss_fn(model, None, training=True)
        return cache["loss_fn"](*args)

    return loss_fn


def _loss_aware(original, condition):
    """A ``train_step(self, ...)`` publishing the closure around ``original(self, ...)``."""
    unpack = keras.utils.unpack_x_y_sample_weight

    def closure_for(model, data, non_trainable=None):
        loss_fn = model.__dict__.get(_LOSS_FN_ATTRIBUTE)
        if loss_fn is None:
            loss_fn = _loss_function(model)
            object.__setattr__(model, _LOSS_FN_ATTRIBUTE, loss_fn)
        x, y, sample_weight = unpack(data)
        return LossClosure(
            loss_fn, x, y, sample_weight,
            non_trainable=non_trainable, variables=lambda: model.trainable_variables,
        )

    if keras.config.backend() == "jax":

        def train_step(self, state, data):
            if not condition(self):
                return original(self, state, data)
            _publish(self.optimizer, closure_for(self, data, non_trainable=state[1]))
            try:
                return original(self, state, data)
            finally:
                _publish(self.optimizer, None)

    else:

        def train_step(self, data):
            if not condition(self):
                return original(self, data)
            _publish(self.optimizer, closure_for(self, data))
            try:
                return original(self, data)
            finally:
                _publish(self.optimizer, None)

    return train_step


def install_loss_aware_train_step(model):
    """Wrap ``model.train_step`` so the optimizer can see the batch's loss.

    Only this model changes (its ``train_step`` attribute); its class and every
    other model keep Keras's step. Each step publishes the closure only when
    `requires_loss_closure(model.optimizer)`, so recompiling with any other
    optimizer trains exactly as Keras does. Idempotent. Call after `compile`
    (the optimizer must be set); the next `fit` uses the wrapped step. The
    model need not be built yet: the loss function is made on the first step.
    Recompiling keeps the hook (the closure uses the loss compiled at the time
    of the step). Works for models overriding ``train_step``. Returns the model.
    """
    if getattr(model, "optimizer", None) is None:
        raise ValueError(
            "Argument `model` must be compiled with an optimizer before the "
            "loss-aware train step is installed. Received: model.optimizer=None. "
            "Call `model.compile(optimizer=..., loss=...)` first."
        )
    if model.__dict__.get(_INSTALLED_ATTRIBUTE, False):
        return model
    step = _loss_aware(
        type(model).train_step, lambda model: requires_loss_closure(model.optimizer)
    )
    make_train_function = type(model).make_train_function

    def rebinding_make_train_function(self, force=False):
        # A new bound method for every new train function: `jax.jit` caches
        # traces by function object, and would otherwise reuse the trace of
        # the previous `compile` (its loss and optimizer) after a recompile.
        if self.train_function is None or force:
            self.train_step = types.MethodType(step, self)
        return make_train_function(self, force)

    model.train_step = types.MethodType(step, model)
    model.make_train_function = types.MethodType(rebinding_make_train_function, model)
    object.__setattr__(model, _INSTALLED_ATTRIBUTE, True)
    model.train_function = None
    return model
