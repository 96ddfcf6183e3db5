"""`EarlyStopping` with finite / goal / divergence thresholds and a stopping reason."""

from __future__ import annotations

import dataclasses
import warnings

import keras

from kerastrain import _validation
from kerastrain._printing import print_msg
from kerastrain.callbacks._stopping_rules import (
    EarlyStoppingPolicy,
    EarlyStoppingState,
    StoppingReason,
    decide,
    resolve_mode,
)


@keras.saving.register_keras_serializable(package="kerastrain")
class EarlyStopping(keras.callbacks.Callback):
    """Stops training when the monitored metric stops improving, turns non-finite,
    reaches a goal, or diverges; says why in ``stopping_reason``.

    Keras's `keras.callbacks.EarlyStopping` (same arguments and the same
    improvement rule: an improvement is a change beyond ``min_delta``; stop
    after ``patience`` epochs without one), plus:

    - ``check_finite``: stop at once when the value is NaN or ±inf;
    - ``stopping_threshold``: stop when the value reaches it (goal reached);
    - ``divergence_threshold``: stop when the value is worse than it;
    - ``stopping_reason`` (a `StoppingReason`) and ``stopping_message``;
    - ``strict``: a missing monitored metric raises, listing those present
      (Keras only warns);
    - ``restore_best_weights`` keeps the best weights as device tensors
      (`keras.ops.copy`), not a host copy per improvement.

    Args:
        monitor: default "val_loss".
        min_delta: default 0.
        patience: default 0.
        verbose: 0 or 1.
        mode: "auto" (default), "min" or "max".
        baseline: default None.
        restore_best_weights: default False.
        start_from_epoch: default 0.
        check_finite: default True.
        stopping_threshold: default None.
        divergence_threshold: default None.
        strict: default False.

    Example:

    ```python
    stop = kerastrain.callbacks.EarlyStopping(
        monitor="val_loss", patience=5, restore_best_weights=True,
        stopping_threshold=0.01, divergence_threshold=10.0)
    model.fit(x, y, validation_split=0.2, epochs=100, callbacks=[stop])
    print(stop.stopping_reason, stop.stopping_message)
    ```

    Reference:
        Prechelt, "Early Stopping - But When?", Neural Networks: Tricks of the Trade, 1998.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0,
                 check_finite=True, stopping_threshold=None, divergence_threshold=None,
                 strict=False):
        super().__init__()
        self.monitor = _validation.check_type("monitor", monitor, str, "a metric name (str)")
        self.min_delta = abs(_validation.check_finite_number("min_delta", min_delta))
        self.patience = _validation.check_integer("patience", patience, minimum=0)
        self.verbose = _validation.check_integer("verbose", verbose, minimum=0)
        self.mode = _validation.check_one_of("mode", mode, ["auto", "min", "max"])
        self.baseline = _optional_number("baseline", baseline)
        self.restore_best_weights = _flag("restore_best_weights", restore_best_weights)
        self.start_from_epoch = _validation.check_integer(
            "start_from_epoch", start_from_epoch, minimum=0)
        self.check_finite = _flag("check_finite", check_finite)
        self.stopping_threshold = _optional_number("stopping_threshold", stopping_threshold)
        self.divergence_threshold = _optional_number("divergence_threshold", divergence_threshold)
        self.strict = _flag("strict", strict)
        if self.mode != "auto":
            _check_thresholds(self.mode, self.stopping_threshold, self.divergence_threshold)
        self._reset()

    def _reset(self):
        self.policy = None
        self.state = EarlyStoppingState()
        self.stopping_reason = StoppingReason.NOT_STOPPED
        self.stopping_message = ""
        self.stopped_epoch = 0
        self.best_weights = None

    @property
    def best(self):
        return self.state.best

    @property
    def best_epoch(self):
        return self.state.best_epoch

    @property
    def wait(self):
        return self.state.wait

    def on_train_begin(self, logs=None):
        self._reset()
        self._set_policy(final=False)

    def _set_policy(self, final):
        mode = resolve_mode(self.monitor, self.mode, self.model, final=final)
        if mode is None:
            return  # a metric only built at the first step: decided at the first epoch end
        _check_thresholds(mode, self.stopping_threshold, self.divergence_threshold)
        self.policy = EarlyStoppingPolicy(
            self.monitor, mode, self.min_delta, self.patience, self.baseline,
            self.start_from_epoch, self.check_finite, self.stopping_threshold,
            self.divergence_threshold)

    def on_epoch_end(self, epoch, logs=None):
        current = self._monitor_value(logs or {})
        if current is None:
            return
        if self.policy is None:
            self._set_policy(final=True)
        if self.restore_best_weights and self.best_weights is None \
                and epoch >= self.start_from_epoch:
            self.best_weights = self._snapshot()
            self.state = dataclasses.replace(self.state, best_epoch=epoch)
        decision = decide(self.policy, self.state, current, epoch)
        self.state = decision.state
        if decision.improved and self.restore_best_weights:
            self.best_weights = self._snapshot()
        if decision.stop:
            self.stopped_epoch = epoch
            self.stopping_reason, self.stopping_message = decision.reason, decision.message
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopping_reason is not StoppingReason.NOT_STOPPED and self.verbose > 0:
            print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping: {self.stopping_message}")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg(f"Restoring model weights from the end of the best epoch: "
                          f"{self.best_epoch + 1}.")
            for variable, value in zip(self.model.weights, self.best_weights):
                variable.assign(value)

    def _snapshot(self):
        """Device-side copies of every model weight (no transfer to the host)."""
        return [keras.ops.copy(variable.value) for variable in self.model.weights]

    def _monitor_value(self, logs):
        value = logs.get(self.monitor)
        if value is not None:
            return float(keras.ops.convert_to_numpy(value))
        available = ", ".join(sorted(logs)) or "(none)"
        if self.strict:
            raise _validation.argument_error(
                "monitor", "name a metric present in the logs", self.monitor,
                f"Available metrics are: {available}.")
        warnings.warn(
            f"EarlyStopping conditioned on metric `{self.monitor}` which is not available. "
            f"Available metrics are: {available}", stacklevel=2)
        return None

    def get_config(self):
        return {
            "monitor": self.monitor, "min_delta": self.min_delta, "patience": self.patience,
            "verbose": self.verbose, "mode": self.mode, "baseline": self.baseline,
            "restore_best_weights": self.restore_best_weights,
            "start_from_epoch": self.start_from_epoch, "check_finite": self.check_finite,
            "stopping_threshold": self.stopping_threshold,
            "divergence_threshold": self.divergence_threshold, "strict": self.strict,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _flag(name, value):
    return _validation.check_type(name, value, bool, "True or False")


def _optional_number(name, value):
    return None if value is None else _validation.check_finite_number(name, value)


def _check_thresholds(mode, stopping_threshold, divergence_threshold):
    if stopping_threshold is None or divergence_threshold is None:
        return
    wrong = divergence_threshold <= stopping_threshold if mode == "min" \
        else divergence_threshold >= stopping_threshold
    if wrong:
        relation = ">" if mode == "min" else "<"
        raise _validation.argument_error(
            "divergence_threshold", f"be {relation} stopping_threshold={stopping_threshold:g} "
            f"in mode={mode!r}", divergence_threshold)
