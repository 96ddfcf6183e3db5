"""`OptimizerWrapper`: the one base of the optimizers that wrap another one.

`Lookahead`, `Monitored` and `SAM` hold an inner optimizer that makes the
update. What they share is here, once: validating the inner optimizer and
rejecting base-optimizer arguments (they belong to the inner optimizer),
building the inner optimizer with the wrapper, listing its variables after the
wrapper's own, forwarding the learning rate, loss scaling, end-of-training
finalization and optionally the step counter, and the config round trip.
"""

from __future__ import annotations

import keras

from kerastrain import _compat
from kerastrain._validation import check_type

__all__ = ["OptimizerWrapper"]


class OptimizerWrapper(keras.optimizers.Optimizer):
    """Base for an optimizer wrapping ``inner_optimizer``.

    A subclass validates its own arguments, calls
    ``super().__init__(optimizer, name, kwargs)``, creates its own variables
    in `build_wrapper(var_list)`, implements ``apply`` and extends
    ``get_config`` with its own arguments (``from_config`` needs no change
    when the config keys are the constructor's arguments).

    The learning rate (so schedules and learning-rate callbacks act on the
    wrapped optimizer), loss scaling and `finalize_variable_values` are the
    inner optimizer's. With ``shares_iterations = True`` the step counter
    is the inner optimizer's too.

    Class attributes:
        shares_iterations: `iterations` is the inner optimizer's (default True).
        optimizer_expected, optimizer_hint: the words of the TypeError raised
            when ``optimizer`` is not a `keras.optimizers.Optimizer`; the hint
            may use ``{name}``, the class name.
    """

    shares_iterations = True
    optimizer_expected = "a keras.optimizers.Optimizer instance"
    optimizer_hint = "Pass an optimizer object, e.g. {name}(keras.optimizers.SGD(0.1))."

    def __init__(self, optimizer, name=None, kwargs=None):
        cls = type(self).__name__
        check_type("optimizer", optimizer, keras.optimizers.Optimizer,
                   self.optimizer_expected, self.optimizer_hint.format(name=cls))
        self.check_inner_optimizer(optimizer)
        if kwargs:
            raise TypeError(
                f"{cls} takes no base-optimizer arguments. Received: {sorted(kwargs)}. "
                "Set them on the wrapped optimizer. For example: "
                f"{cls}(keras.optimizers.SGD(0.1, {sorted(kwargs)[0]}=...))."
            )
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = optimizer

    def check_inner_optimizer(self, optimizer):
        """Raise for an optimizer this wrapper cannot wrap (default: accept any)."""

    # Forwarded to the inner optimizer.

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        if self.shares_iterations:
            return self.inner_optimizer.iterations
        return _compat.optimizer_iterations(self)

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    # State.

    def build(self, var_list):
        if self.built:
            return
        if not self.inner_optimizer.built:
            self.inner_optimizer.build(var_list)
        super().build(var_list)
        self.build_wrapper(var_list)

    def build_wrapper(self, var_list):
        """Create the wrapper's own variables (default: none)."""

    @property
    def variables(self):
        """The wrapper's variables, then the inner optimizer's."""
        return list(_compat.optimizer_own_variables(self)) + self.inner_optimizer.variables

    # Config.

    def get_config(self):
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        optimizer = keras.saving.deserialize_keras_object(
            config.pop("optimizer"), custom_objects=custom_objects)
        return cls(optimizer, **config)
