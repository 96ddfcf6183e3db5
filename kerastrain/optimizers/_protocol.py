"""The transform protocol: `Transform` and its words (`Slot`, `Hyperparameter`, `Scaled`).

A transform turns the running update ``u`` (it starts as the gradient) into a
new one; `Chain` runs transforms in order and subtracts the result from the
weights: Δθ = −u_final, the learning rate entering wherever
`ScaleByLearningRate` sits. What a transform declares, and what its methods
receive and return, is written once, in `Transform`'s docstring;
`hyperparameter_table` lists what a chain's transforms declare.
"""

from __future__ import annotations

import dataclasses

import keras

from kerastrain._validation import check_one_of
from kerastrain.optimizers import _hyper

__all__ = ["Context", "Hyperparameter", "Scaled", "Slot", "Transform", "hyperparameter_table"]

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
