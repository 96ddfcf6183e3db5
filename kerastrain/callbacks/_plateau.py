"""`ReduceLROnPlateau`: Keras's plateau reduction, working with a schedule too."""

from __future__ import annotations

import warnings

import keras
import numpy as np
from keras import ops

from kerastrain import _compat
from kerastrain._printing import print_msg
from kerastrain._validation import (
    check_in_range,
    check_integer,
    check_one_of,
    check_positive,
    check_type,
    type_error,
)
from kerastrain.callbacks._stopping_rules import resolve_mode
from kerastrain.schedules._base import LearningRateSchedule, check_rate
from kerastrain.schedules._scaled import Scaled

_register = keras.saving.register_keras_serializable(package="kerastrain")


def plateau_step(state, current, *, improved, patience):
    """One epoch of the plateau decision, as a pure function.

    Args:
        state: ``(best, wait, cooldown_counter)``.
        current: the monitored value this epoch.
        improved: ``improved(current, best) -> bool``.
        patience: as in `ReduceLROnPlateau`.

    Returns ``(new_state, reduce)``; ``reduce`` says the rate should drop now.
    When the rate does drop, the caller resets the state with `after_reduction`
    (as Keras, a rate already at its floor leaves ``wait`` counting).
    """
    best, wait, cooldown_counter = state
    if cooldown_counter > 0:
        cooldown_counter -= 1
        wait = 0
    if improved(current, best):
        return (current, 0, cooldown_counter), False
    if cooldown_counter > 0:  # as Keras: the epoch that ends a cooldown already counts
        return (best, wait, cooldown_counter), False
    wait += 1
    return (best, wait, cooldown_counter), wait >= patience


def after_reduction(state, cooldown):
    """The state once the rate has dropped: ``wait`` back to 0, the cooldown starts."""
    return (state[0], 0, cooldown)


@_register
class ReduceLROnPlateau(keras.callbacks.Callback):
    """Reduce the learning rate when a metric stops improving, with or without a schedule.

    Keras's ``ReduceLROnPlateau`` raises ``TypeError`` when the optimizer's
    learning rate is a schedule. This one (same name and arguments) works
    with both: a constant rate is set directly, as Keras does; a schedule is
    wrapped at the start of training in `kerastrain.schedules.Scaled` (unless
    it already is one), and each reduction multiplies the wrapper's
    ``factor``, so the schedule keeps its shape at a lower level. The factor
    is a non-trainable variable that the compiled train step reads each time
    it runs: a reduction is an ``assign``, and the train step is not
    re-traced (it is traced anew once, when a schedule is first wrapped
    after a previous ``fit()`` has traced it). The factor is also in the
    optimizer's config: it survives saving the model.

    Decision (Keras's): the monitored value improves when it beats the best by
    more than ``min_delta``; after ``patience`` epochs without improvement,
    outside a cooldown, the rate is multiplied by ``factor`` unless it is
    already at or below ``min_lr``; then ``cooldown`` epochs pass before
    counting again. The rate before the reduction goes into
    ``logs["learning_rate"]``, as Keras logs it.

    Args:
        monitor: the metric to watch. Default ``"val_loss"``.
        factor: the reduction multiplier, in (0, 1). Default 0.1.
        patience: epochs without improvement before reducing, integer >= 0. Default 10.
        verbose: 0 (quiet) or 1 (print each reduction). Default 0.
        mode: ``"auto"`` (default), ``"min"`` or ``"max"``. ``"auto"`` takes the
            direction the monitored metric declares, as Keras 3.15's
            ``MonitorCallback`` and KerasTuner's ``infer_metric_direction`` do:
            ``"min"`` for losses, else the direction of the model's metric of
            that name, or of the Keras metric registered under it (``val_auc``,
            ``val_accuracy``: ``"max"``; ``val_mae``: ``"min"``); ValueError
            (Keras's) when it cannot tell.
        min_delta: the least change counted as an improvement, >= 0. Default 1e-4.
        cooldown: epochs to wait after a reduction, integer >= 0. Default 0.
        min_lr: the floor of the reduced rate, >= 0. Default 0.0.

    Example:
        >>> model.compile(optimizer=keras.optimizers.SGD(schedules.SGDR(0.1, 1000)),
        ...               loss="mse")
        >>> model.fit(x, y, validation_split=0.2, epochs=50,
        ...           callbacks=[ReduceLROnPlateau(factor=0.5, patience=3)])
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__()
        self.monitor = check_type("monitor", monitor, str, "a string")
        self.factor = check_in_range("factor", factor, 0.0, 1.0, False, False,
                                     hint="A factor >= 1 would not reduce the rate.")
        self.patience = check_integer("patience", patience, minimum=0)
        self.verbose = check_integer("verbose", verbose, minimum=0)
        self.mode = check_one_of("mode", mode, ("auto", "min", "max"))
        self.min_delta = check_positive("min_delta", min_delta, allow_zero=True)
        self.cooldown = check_integer("cooldown", cooldown, minimum=0)
        self.min_lr = check_rate("min_lr", min_lr, allow_zero=True)
        self._sign = _sign(resolve_mode(self.monitor, self.mode, final=False))
        self._reset()

    def _reset(self):
        self._state = (np.inf, 0, 0)

    @property
    def best(self):
        """The best monitored value so far (in the monitored metric's units)."""
        return (self._sign or 1.0) * self._state[0]

    @property
    def wait(self):
        return self._state[1]

    @property
    def cooldown_counter(self):
        return self._state[2]

    def get_config(self):
        return {
            "monitor": self.monitor, "factor": self.factor, "patience": self.patience,
            "verbose": self.verbose, "mode": self.mode, "min_delta": self.min_delta,
            "cooldown": self.cooldown, "min_lr": self.min_lr,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def on_train_begin(self, logs=None):
        self._reset()
        if self.mode == "auto":  # the model's metric of that name, if built (else epoch end)
            self._sign = _sign(resolve_mode(self.monitor, self.mode, self.model, final=False))
        optimizer = self.model.optimizer
        rate = _compat.learning_rate_object(optimizer)
        if isinstance(rate, Scaled):
            rate.min_learning_rate = self.min_lr  # an assign: nothing re-traced
        elif isinstance(rate, LearningRateSchedule):
            optimizer.learning_rate = Scaled(rate, min_learning_rate=self.min_lr)
            self._retrace()  # a train step traced before holds the unwrapped schedule
        elif not isinstance(rate, keras.Variable):
            raise type_error(
                "learning_rate", "a float, a keras Variable or a LearningRateSchedule", rate,
                "ReduceLROnPlateau cannot scale a plain callable learning rate; "
                "write it as a keras.optimizers.schedules.LearningRateSchedule.",
            )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        learning_rate = self._current_rate()
        logs["learning_rate"] = learning_rate  # as Keras: the rate before any reduction
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"ReduceLROnPlateau: the monitored metric `{self.monitor}` is not in the "
                f"logs (available: {', '.join(sorted(logs))}); the rate is unchanged.",
                stacklevel=2,
            )
        else:
            if self._sign is None:  # the model's metrics are built now (as Keras decides)
                self._sign = _sign(resolve_mode(self.monitor, self.mode, self.model))
            signed = self._sign * float(current)
            self._state, reduce = plateau_step(
                self._state, signed, improved=lambda a, b: a < b - self.min_delta,
                patience=self.patience,
            )
            if reduce and learning_rate > np.float32(self.min_lr):
                self._reduce(learning_rate, epoch)
                self._state = after_reduction(self._state, self.cooldown)

    def _current_rate(self):
        return float(ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def _reduce(self, learning_rate, epoch):
        optimizer = self.model.optimizer
        rate = _compat.learning_rate_object(optimizer)
        if isinstance(rate, Scaled):
            rate.factor = rate.factor * self.factor  # an assign: nothing re-traced
        else:
            optimizer.learning_rate = max(learning_rate * self.factor, self.min_lr)
        if self.verbose:
            print_msg(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                      f"{self._current_rate()}.")

    def _retrace(self):
        """Build the train step anew if one was traced (only when a schedule gets wrapped)."""
        if getattr(self.model, "train_function", None) is not None:
            self.model.make_train_function(force=True)


def _sign(mode):
    """-1 for "max" (the state keeps minimising), 1 for "min", None while unknown."""
    return None if mode is None else (-1.0 if mode == "max" else 1.0)
