"""The median stopping rule: the decision against a float64 reference, and a real search."""

import csv
import os
from concurrent import futures

import keras
import numpy as np
import pytest
from _tuning_helpers import blobs

from kerastrain.testing import TestCase
from kerastrain.tuning import (
    MedianStoppingPruner,
    _driver,
    _pruning,
    create_tuner,
    median_stopping_rule,
    search,
)
from kerastrain.tuning._pruning import report_epoch


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


def _tuner(directory, pruner):
    def build(hp):
        hp.Float("x", 0.0, 1.0)
        return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])

    return create_tuner("random", build, objective="val_accuracy", max_trials=20,
                        pruner=pruner, directory=directory, tensorboard=False)


def _run_trial(oracle, curves, tuner_id="tuner0", pruned=False):
    """One trial through the oracle: each fold's curve reported epoch by epoch, then ended."""
    trial = oracle.create_trial(tuner_id)
    answers = []
    for fold, curve in enumerate(curves):
        for step in range(1, len(curve) + 1):
            answers.append(report_epoch(oracle, trial.trial_id, curve[:step], "max", fold))
    oracle.update_trial(trial.trial_id, {"val_accuracy": max(curves[0]),
                                         "pruned": float(pruned)})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    return trial.trial_id, answers


class OraclePruningTest(TestCase):
    """The oracle decides through `update_trial`, locally and over KerasTuner's gRPC."""

    def check_oracle(self, chief, client):
        completed = [[0.5, 0.6, 0.7], [0.4, 0.7, 0.8], [0.6, 0.65, 0.9]]
        for curve in completed:
            _, answers = _run_trial(client, [curve])
            self.assertEqual(answers, [False] * 3)
        # A cross-validated trial: its curve is the mean over folds (not counted: pruned).
        cv_id, _ = _run_trial(client, [[0.1, 0.2, 0.3], [0.3, 0.4, 0.5]], pruned=True)
        history = chief.trials[cv_id].metrics.get_history(_pruning.CURVE_METRIC)
        np.testing.assert_allclose([o.mean() for o in history], [0.2, 0.3, 0.4])
        self.assertEqual(_pruning.completed_curves(chief.trials.values()), completed)
        running = client.create_trial("tuner0")
        # Step 1: warmup. Step 2: the running means are 0.55, 0.55, 0.625 (median 0.55) and
        # the best 0.55 is not strictly below it. Step 3: means 0.6, 0.633, 0.717, best 0.56.
        curve = [0.5, 0.55, 0.56]
        answers = [report_epoch(client, running.trial_id, curve[:s], "max") for s in (1, 2, 3)]
        self.assertEqual(answers, [reference_rule(curve[:s], completed, "max", 3, 1)
                                   for s in (1, 2, 3)])
        self.assertEqual(answers, [False, False, True])
        self.assertEqual(chief.trials[running.trial_id].status, "RUNNING")  # only the answer

    def test_local_oracle_answers_stopped(self):
        tuner = _tuner(self.get_temp_dir(), MedianStoppingPruner(3, 1))
        self.assertIs(tuner.oracle.pruner, tuner.pruner)
        self.check_oracle(tuner.oracle, tuner.oracle)

    def test_no_pruner_never_stops(self):
        oracle = _tuner(self.get_temp_dir(), None).oracle
        for curve in ([0.9, 0.9], [0.9, 0.9], [0.9, 0.9]):
            _run_trial(oracle, [curve])
        _, answers = _run_trial(oracle, [[0.0, 0.0, 0.0]])
        self.assertEqual(answers, [False] * 3)

    def test_rerun_trial_starts_its_curve_afresh(self):
        oracle = _tuner(self.get_temp_dir(), MedianStoppingPruner(3, 1)).oracle
        trial = oracle.create_trial("tuner0")
        report_epoch(oracle, trial.trial_id, [0.1, 0.2], "max")  # interrupted run
        for step in (1, 2):
            report_epoch(oracle, trial.trial_id, [0.7, 0.8][:step], "max")
        history = oracle.trials[trial.trial_id].metrics.get_history(_pruning.CURVE_METRIC)
        self.assertEqual([o.value for o in history], [[0.7], [0.8]])

    def test_chief_oracle_answers_a_worker_over_grpc(self):
        import grpc
        from keras_tuner.src.distribute import oracle_client

        from kerastrain import _compat
        from kerastrain.testing import free_port

        tuner = _tuner(self.get_temp_dir(), MedianStoppingPruner(3, 1))
        port = free_port()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        _compat.add_oracle_servicer(tuner.oracle, server)
        self.assertTrue(server.add_insecure_port(f"127.0.0.1:{port}"))
        server.start()
        environment = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port),
                       "KERASTUNER_TUNER_ID": "tuner0"}
        try:
            with _driver._environment(environment), _compat.client_timeout(30):
                client = oracle_client.OracleClient(tuner.oracle)
                self.check_oracle(tuner.oracle, client)
        finally:
            server.stop(grace=None)
