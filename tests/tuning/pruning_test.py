"""The median stopping rule: the decision against a float64 reference, and a real search."""

import csv
import os

import keras
import numpy as np
import pytest
from _tuning_helpers import blobs

from kerastrain.testing import TestCase
from kerastrain.tuning import MedianStoppingPruner, create_tuner, median_stopping_rule, search


def reference_rule(curve, completed, direction, min_trials, warmup_epochs):
    """Golovin et al. 2017 (Vizier) 3.2.2, written out: stop at step s if the trial's best
    value by s is strictly worse than the median over completed trials of their running
    averages (1/s) sum_{t<=s} o_t."""
    s = len(curve)
    if s <= warmup_epochs:
        return False
    averages = [sum(float(v) for v in c[:s]) / s for c in completed if len(c) >= s]
    if len(averages) < min_trials:
        return False
    averages.sort()
    middle = len(averages) // 2
    median = averages[middle] if len(averages) % 2 else (averages[middle - 1] + averages[middle]) / 2
    best = max(curve) if direction == "max" else min(curve)
    return best < median if direction == "max" else best > median


class MedianStoppingRuleTest(TestCase):
    def test_matches_reference_on_random_curves(self):
        for _ in range(300):
            completed = [list(self.rng.uniform(size=self.rng.integers(1, 6)))
                         for _ in range(self.rng.integers(0, 6))]
            curve = list(self.rng.uniform(size=self.rng.integers(1, 6)))
            direction = ["max", "min"][int(self.rng.integers(2))]
            min_trials, warmup = int(self.rng.integers(1, 4)), int(self.rng.integers(0, 3))
            self.assertEqual(
                median_stopping_rule(curve, completed, direction, min_trials, warmup),
                reference_rule(curve, completed, direction, min_trials, warmup))

    def test_hand_worked_case(self):
        # Completed running averages at s=2: (0.5+0.7)/2=0.6, (0.6+0.8)/2=0.7, (0.2+0.4)/2=0.3
        # -> median 0.6. Best of [0.1, 0.55] is 0.55 < 0.6: stop; best 0.65 > 0.6: continue.
        completed = [[0.5, 0.7, 0.9], [0.6, 0.8], [0.2, 0.4, 0.5]]
        self.assertTrue(median_stopping_rule([0.1, 0.55], completed, "max", 3, 1))
        self.assertFalse(median_stopping_rule([0.1, 0.65], completed, "max", 3, 1))
        self.assertFalse(median_stopping_rule([0.1, 0.55], completed, "max", 4, 1))  # too few
        self.assertFalse(median_stopping_rule([0.1, 0.55], completed, "max", 3, 2))  # warmup
        # For a loss (min), the same numbers: best 0.65 > median 0.6 -> stop.
        self.assertTrue(median_stopping_rule([0.9, 0.65], completed, "min", 3, 1))

    def test_pruner_config_round_trip(self):
        pruner = self.run_serialization_test(MedianStoppingPruner(min_trials=4, warmup_epochs=2))
        self.assertEqual(pruner.get_config(), {"min_trials": 4, "warmup_epochs": 2})

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match=r"Argument `min_trials` must be an integer >= 1. "
                                             r"Received: min_trials=0"):
            MedianStoppingPruner(min_trials=0)
        with pytest.raises(ValueError, match=r"Argument `warmup_epochs` must be an integer >= 0"):
            MedianStoppingPruner(warmup_epochs=-1)
        with pytest.raises(TypeError, match=r"Argument `min_trials` must be an integer"):
            MedianStoppingPruner(min_trials=2.5)
        with pytest.raises(ValueError, match=r"Argument `direction` must be one of 'max', 'min'"):
            median_stopping_rule([1.0], [], "up")


def build_with_planted_learning_rate(hp):
    """Grid search visits the learning rates in order: three good ones, then 0 (cannot learn)."""
    rate = hp.Choice("learning_rate", [0.5, 0.3, 0.2, 0.0])
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(rate, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class PrunerSearchTest(TestCase):
    def test_stops_a_planted_bad_trial(self):
        x, y = blobs(150)
        directory = self.get_temp_dir()
        tuner = create_tuner("grid", build_with_planted_learning_rate, max_trials=4,
                             max_epochs=5, pruner=MedianStoppingPruner(3, 1),
                             directory=directory, tensorboard=False)
        search(tuner, x[:90], y[:90], validation_data=(x[90:], y[90:]), batch_size=16)
        with open(os.path.join(tuner.project_dir, "results.csv")) as stream:
            rows = {row["learning_rate"]: row for row in csv.DictReader(stream)}
        self.assertEqual(sorted(rows), ["0.0", "0.2", "0.3", "0.5"])
        for good in ("0.5", "0.3", "0.2"):
            self.assertEqual((rows[good]["pruned"], rows[good]["epochs"]), ("0", "5"), good)
        bad = rows["0.0"]
        self.assertEqual(bad["pruned"], "1")
        self.assertLess(int(bad["epochs"]), 5)
        self.assertLess(float(bad["score"]), min(float(rows[g]["score"]) for g in ("0.5", "0.3")))
        self.assertEqual(np.sum([row["status"] == "COMPLETED" for row in rows.values()]), 4)
