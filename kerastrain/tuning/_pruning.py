"""Pruning of bad trials: the median stopping rule.

Golovin et al. (2017), Google Vizier, section 3.2.2: a running trial is
stopped at step ``s`` if its best objective value up to ``s`` is strictly
worse than the median, over completed trials, of their running averages
``(1/s) * sum_{t<=s} o_t``. Completed trials' per-epoch curves are read from
the project directory, so workers of a parallel search prune against each
other's results.
"""

from __future__ import annotations

import keras
import numpy as np

from kerastrain import _validation
from kerastrain.tuning import _results


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
    step = len(curve)
    if step <= warmup_epochs:
        return False
    eligible = [np.asarray(c[:step], dtype=np.float64) for c in completed_curves if len(c) >= step]
    if len(eligible) < min_trials:
        return False
    median = float(np.median([c.mean() for c in eligible]))
    values = np.asarray(curve, dtype=np.float64)
    if direction == "max":
        return float(values.max()) < median
    return float(values.min()) > median


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

    def get_config(self):
        return {"min_trials": self.min_trials, "warmup_epochs": self.warmup_epochs}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class PruningCallback(keras.callbacks.Callback):
    """Applies a pruner at each epoch end of one trial's `fit`."""

    def __init__(self, pruner, project_dir, objective, direction):
        super().__init__()
        self.pruner = pruner
        self.project_dir = project_dir
        self.objective = objective
        self.direction = direction
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
        if len(self.curve) <= self.pruner.warmup_epochs:
            return
        completed = _results.completed_curves(self.project_dir)
        if self.pruner.should_stop(self.curve, completed, self.direction):
            self.pruned = True
            self.model.stop_training = True
