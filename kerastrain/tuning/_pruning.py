"""Pruning of bad trials: the median stopping rule, decided by the oracle.

Golovin et al. (2017), Google Vizier, section 3.2.2: a running trial is
stopped at step ``s`` if its best objective value up to ``s`` is strictly
worse than the median, over completed trials, of their running averages
``(1/s) * sum_{t<=s} o_t``.

The decision goes through KerasTuner's public oracle path, the same for a
sequential search and for workers of a parallel one: after each epoch the
tuner reports the objective with ``oracle.update_trial(trial_id, metrics,
step)`` (`report_epoch`); the oracle (`PruningOracle`, on the chief in a
parallel search) records it in the trial's metrics (``CURVE_METRIC``, one
value per fold at each step, so a cross-validated trial's curve is the mean
over its folds) and answers with a trial whose status is ``"STOPPED"`` when
the rule says stop. Completed trials' curves come from the oracle's own
trials (saved in their ``trial.json``), not from files read by workers.
"""

from __future__ import annotations

import keras
import keras_tuner
import numpy as np
from keras_tuner.engine import trial as trial_module

from kerastrain import _validation

# The per-epoch objective, recorded in each trial's metrics by the oracle.
CURVE_METRIC = "kerastrain/objective_by_epoch"
# Sent with each report, used for the decision only (not recorded): the fold the
# epoch belongs to (a first report of fold 0 starts the curve afresh, e.g. when an
# interrupted trial is re-run) and that fold's best value so far.
FOLD_KEY = "kerastrain/fold"
BEST_KEY = "kerastrain/best_so_far"


def median_stopping_rule(curve, completed_curves, direction, min_trials=3, warmup_epochs=1):
    """True when the trial whose objective so far is ``curve`` should stop.

    Args:
        curve: the running trial's objective values, one per epoch so far.
        completed_curves: per-epoch objective values of completed trials.
        direction: ``"max"`` or ``"min"``.
        min_trials: completed trials (reaching this epoch) needed before pruning.
        warmup_epochs: never stop during the first ``warmup_epochs`` epochs.
    """
    _validation.check_one_of("direction", direction, ("max", "min"))
    if not len(curve):
        return False
    values = np.asarray(curve, dtype=np.float64)
    best = float(values.max() if direction == "max" else values.min())
    return _trails_median(len(curve), best, completed_curves, direction, min_trials,
                          warmup_epochs)


def _trails_median(step, best, completed_curves, direction, min_trials, warmup_epochs):
    """The rule for a trial at ``step`` (epochs so far) whose best value so far is ``best``."""
    if step <= warmup_epochs:
        return False
    eligible = [np.asarray(c[:step], dtype=np.float64) for c in completed_curves if len(c) >= step]
    if len(eligible) < min_trials:
        return False
    median = float(np.median([c.mean() for c in eligible]))
    return best < median if direction == "max" else best > median


@keras.saving.register_keras_serializable(package="kerastrain")
class MedianStoppingPruner:
    """Stops a trial whose validation metric trails the median of completed trials.

    Args:
        min_trials: completed trials needed before any trial is stopped (default 3).
        warmup_epochs: epochs every trial runs before it may be stopped (default 1).

    Example:

        tuner = create_tuner("random", hypermodel, pruner=MedianStoppingPruner(3, 2))

    Reference:
        Golovin et al., "Google Vizier: A Service for Black-Box Optimization", KDD 2017.
    """

    def __init__(self, min_trials=3, warmup_epochs=1):
        self.min_trials = _validation.check_integer("min_trials", min_trials, minimum=1)
        self.warmup_epochs = _validation.check_integer("warmup_epochs", warmup_epochs, minimum=0)

    def should_stop(self, curve, completed_curves, direction):
        """`median_stopping_rule` with this pruner's settings."""
        return median_stopping_rule(curve, completed_curves, direction,
                                    self.min_trials, self.warmup_epochs)

    def should_stop_at(self, step, best, completed_curves, direction):
        """The same decision from the running trial's step and best value so far."""
        _validation.check_one_of("direction", direction, ("max", "min"))
        return _trails_median(step, best, completed_curves, direction, self.min_trials,
                              self.warmup_epochs)

    def get_config(self):
        return {"min_trials": self.min_trials, "warmup_epochs": self.warmup_epochs}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def completed_curves(trials):
    """Per-epoch objective curves of the trials that completed without being pruned."""
    curves = []
    for trial in trials:
        if (trial.status != trial_module.TrialStatus.COMPLETED
                or not trial.metrics.exists(CURVE_METRIC)):
            continue
        if trial.metrics.exists("pruned") and trial.metrics.get_last_value("pruned"):
            continue
        curves.append([float(o.mean()) for o in trial.metrics.get_history(CURVE_METRIC)])
    return curves


class PruningOracle:
    """Oracle mixin: answers a trial's per-epoch report (`report_epoch`) with "STOPPED".

    ``pruner`` (a `MedianStoppingPruner`, or None: never stop) is set on the
    oracle by `create_tuner`. Any other ``update_trial`` is KerasTuner's own.
    """

    pruner = None

    @keras_tuner.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        if CURVE_METRIC not in metrics:
            return super().update_trial(trial_id, metrics, step=step)
        trial = self.trials[trial_id]
        value = float(metrics[CURVE_METRIC])
        if int(metrics.get(FOLD_KEY, 0)) == 0 and int(step) == 0:
            trial.metrics.metrics.pop(CURVE_METRIC, None)  # a (re-)run starts its curve
        if not trial.metrics.exists(CURVE_METRIC):
            trial.metrics.register(CURVE_METRIC, direction=self.objective.direction)
        trial.metrics.update(CURVE_METRIC, value, step=int(step))
        if self.pruner is None or not self.pruner.should_stop_at(
                int(step) + 1, float(metrics.get(BEST_KEY, value)),
                completed_curves(self.trials.values()), self.objective.direction):
            return trial
        return trial_module.Trial(trial.hyperparameters, trial_id=trial_id,
                                  status=trial_module.TrialStatus.STOPPED)


def report_epoch(oracle, trial_id, curve, direction, fold=0):
    """Report the last value of ``curve`` (one fold's objective so far) to ``oracle``;
    True when the oracle answers that the trial is stopped."""
    best = max(curve) if direction == "max" else min(curve)
    answer = oracle.update_trial(
        trial_id, {CURVE_METRIC: float(curve[-1]), FOLD_KEY: float(fold), BEST_KEY: float(best)},
        step=len(curve) - 1)
    return answer.status == trial_module.TrialStatus.STOPPED


class PruningCallback(keras.callbacks.Callback):
    """Reports each epoch's objective of one trial's `fit` to the oracle; stops the fit
    when the oracle answers "STOPPED"."""

    def __init__(self, oracle, trial_id, objective, direction, fold=0):
        super().__init__()
        self.oracle = oracle
        self.trial_id = trial_id
        self.objective = objective
        self.direction = direction
        self.fold = fold
        self.curve = []
        self.pruned = False

    def on_train_begin(self, logs=None):
        self.curve = []
        self.pruned = False

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.objective)
        if value is None:
            return
        self.curve.append(float(value))
        if report_epoch(self.oracle, self.trial_id, self.curve, self.direction, self.fold):
            self.pruned = True
            self.model.stop_training = True
