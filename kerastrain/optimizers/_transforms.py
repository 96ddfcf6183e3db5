"""The transform protocol (`Transform`), then clipping, weight decay, learning rate, momentum.

A transform turns the running update ``u`` (it starts as the gradient) into a
new one; `Chain` runs transforms in order and subtracts the result from the
weights: Δθ = −u_final, the learning rate entering wherever
`ScaleByLearningRate` sits. What a transform declares, and what its methods
receive and return, is written once, in `Transform`'s docstring. The adaptive
scalings are in `_scaling.py`.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from kerastrain._validation import argument_error, check_in_range, check_one_of, check_positive
from kerastrain.optimizers import _hyper

__all__ = [
    "AdaptiveClip",
    "ClipByGlobalNorm",
    "ClipByNorm",
    "ClipByValue",
    "Context",
    "Hyperparameter",
    "Momentum",
    "ScaleByLearningRate",
    "Scaled",
    "Slot",
    "Transform",
    "WeightDecay",
    "hyperparameter_table",
]

_register = keras.saving.register_keras_serializable(package="kerastrain")
_KINDS = ("float", "schedulable", "integer", "bool", "choice")


@dataclasses.dataclass(frozen=True)
class Slot:
    """One optimizer variable a transform keeps.

    Args:
        name: the variable's name (per-variable slots are named
            ``<model variable path>_<name>``, as Keras names its own).
        initializer: "zeros" (default), "ones", or a number (a constant).
    """

    name: str
    initializer: object = "zeros"

    def keras_initializer(self):
        if isinstance(self.initializer, str):
            return self.initializer
        return keras.initializers.Constant(self.initializer)


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """One constructor argument of a transform: its config entry, and what it is.

    Args:
        name: the constructor argument and attribute name (``beta_1``).
        description: what it is, in a few words.
        kind: "float" (a number the update computes with), "schedulable" (a
            number, a `LearningRateSchedule` or a callable of the step, resolved
            once per step), "integer", "bool" or "choice" (options that change
            which computation runs).
    """

    name: str
    description: str
    kind: str = "float"

    def __post_init__(self):
        check_one_of("kind", self.kind, _KINDS)

    @property
    def numeric(self):
        """True for "float" and "schedulable": a value per step, not a code path."""
        return self.kind in ("float", "schedulable")


@dataclasses.dataclass(frozen=True)
class Scaled:
    """An update returned as ``updates · factor``, the scalar factor not yet multiplied in.

    `Chain` keeps the factor pending and multiplies the tensor once, before the
    next transform that is not ``scale_invariant`` (or at the end): bias
    corrections and α_t cost one tensor pass instead of one each.
    """

    updates: object
    factor: object


class Context:
    """What `Transform.update` receives for one model variable at one step.

    Attributes:
        optimizer: the `Chain` (use ``optimizer.assign`` to write a slot).
        variable: the model variable being updated.
        gradient: its gradient, cast to ``dtype``, after the transforms marked
            ``gradient_transform`` that ran so far (second moments use it).
        slots: ``{name: slot variable}``: this transform's per-variable slots
            for this model variable.
        global_slots: ``{name: scalar variable}``: this transform's global slots.
        state: what this transform's `begin_step` returned at this step.
        learning_rate: α_t, cast to ``dtype``.
        iterations: the steps completed before this one (int tensor).
        dtype: the variable's dtype.
    """

    __slots__ = ("optimizer", "variable", "gradient", "slots", "global_slots", "state",
                 "learning_rate", "iterations", "dtype")

    def __init__(self, **values):
        for key, value in values.items():
            setattr(self, key, value)


class Transform:
    """Base of every gradient transform: declarations, slots and config.

    A subclass declares, as class attributes (``slots`` and ``global_slots``
    may be properties where they depend on its arguments):

    - ``hyperparameters``: a tuple of `Hyperparameter` (or plain names: a
      "float"), one per constructor argument, stored as the attribute of that
      name. They *are* the config: `get_config` writes them (schedules
      serialized) and `from_config` reads them back; no `get_config` to write.
      A "schedulable" one is read with `hyperparameter_at` in `begin_step`.
    - ``slots``: per-variable `Slot`s (or plain names: zeros), one optimizer
      variable per model variable, of its shape and dtype.
    - ``global_slots``: scalar float32 `Slot`s, one per optimizer.
    - ``scale_invariant``: True when update(s·u) = s·update(u) for a scalar
      s > 0; the chain then carries a pending `Scaled` factor past it.
    - ``gradient_transform``: True when its output also replaces the
      *gradient* later transforms see as ``context.gradient`` (clipping,
      L2 weight decay).

    And implements:

    - ``begin_step(optimizer, grads, variables, global_slots)`` (optional):
      once per step, before any variable: scalars shared by all variables
      (e.g. bias corrections). ``grads`` and ``variables`` are the step's
      lists, ``global_slots`` is ``{name: scalar variable}``. Its return value
      is ``context.state`` in `update`. Default: None.
    - ``update(updates, context)``: ``updates`` is the running update of one
      variable (a tensor of its shape, cast to its dtype), ``context`` a
      `Context`. Returns the new update tensor, or ``Scaled(tensor, factor)``
      for ``tensor · factor`` with a scalar factor. Slots are written with
      ``context.optimizer.assign(slot, value)``. Default: the identity.

    Example:

    ```python
    class ScaleBySign(Transform):
        hyperparameters = (Hyperparameter("scale", "multiplies sign(u)"),)

        def __init__(self, scale=1.0):
            self.scale = scale

        def update(self, updates, context):
            return ops.sign(updates) * self.scale
    ```
    """

    hyperparameters = ()
    slots = ()
    global_slots = ()
    scale_invariant = False
    gradient_transform = False

    def build(self, optimizer, variables):
        """Create the declared slots: ``({name: [per model variable]}, {name: scalar})``."""
        per_variable = {}
        for slot in map(_as_slot, self.slots):
            per_variable[slot.name] = optimizer.add_optimizer_variables(
                variables, slot.name, initializer=slot.keras_initializer())
        scalars = {
            slot.name: optimizer.add_variable((), slot.keras_initializer(), "float32",
                                              name=slot.name)
            for slot in map(_as_slot, self.global_slots)
        }
        return per_variable, scalars

    def begin_step(self, optimizer, grads, variables, global_slots):
        return None

    def update(self, updates, context):
        return updates

    def hyperparameter_at(self, name, optimizer):
        """Hyperparameter ``name`` at this step: float32 for a schedule, else as given."""
        return _hyper.resolve(getattr(self, name), optimizer.iterations, "float32")

    @classmethod
    def declared_hyperparameters(cls):
        """``hyperparameters`` as `Hyperparameter`s (plain names read as "float")."""
        return tuple(Hyperparameter(h, "") if isinstance(h, str) else h
                     for h in cls.hyperparameters)

    def get_config(self):
        return {h.name: _hyper.serialize(getattr(self, h.name)) if h.kind == "schedulable"
                else getattr(self, h.name) for h in self.declared_hyperparameters()}

    @classmethod
    def from_config(cls, config):
        kinds = {h.name: h.kind for h in cls.declared_hyperparameters()}
        return cls(**{key: _hyper.deserialize(value) if kinds.get(key) == "schedulable" else value
                      for key, value in config.items()})

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


def _as_slot(slot):
    return Slot(slot) if isinstance(slot, str) else slot


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
        if not context.optimizer._use_weight_decay(context.variable):
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


def hyperparameter_table(optimizer):
    """Every declared hyperparameter of a `Chain`'s transforms, with its value.

    Returns a list of dicts, one per (transform, hyperparameter), in chain order:
    ``{"transform": index in optimizer.transforms, "class": transform class name,
    "name", "kind", "description", "numeric": bool, "value": current value
    (a schedule serialized)}``. Example: ``hyperparameter_table(Adam())``
    lists beta_1 (FirstMoment, schedulable), beta_2 / epsilon (the scale), ...

    Args:
        optimizer: a `kerastrain.optimizers.Chain` (any preset).
    """
    rows = []
    for index, transform in enumerate(optimizer.transforms):
        config = transform.get_config()
        rows.extend({"transform": index, "class": type(transform).__name__, "name": h.name,
                     "kind": h.kind, "description": h.description, "numeric": h.numeric,
                     "value": config[h.name]} for h in transform.declared_hyperparameters())
    return rows
