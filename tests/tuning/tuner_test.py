"""create_tuner: KerasTuner's tuners by name, clean memory per trial, TensorBoard, errors."""

import os

import keras
import numpy as np
import pytest
from _tuning_helpers import blobs

from kerastrain.testing import TestCase
from kerastrain.tuning import MLPHyperModel, create_tuner, search


def small_hypermodel():
    return MLPHyperModel(input_shape=(6,), num_classes=3, layers=[1, 1], units=[4, 8],
                         activations=["relu"], initializers=["glorot_uniform"],
                         optimizers=["adam"], learning_rate=[0.01, 0.05],
                         schedules=["constant"], l2=[0, 0], dropout=[0.0, 0.0],
                         batch_norm=[False], batch_sizes=[32])


class TunerTest(TestCase):
    def setUp(self):
        super().setUp()
        x, y = blobs(90)
        self.train, self.validation = (x[:60], y[:60]), (x[60:], y[60:])

    def test_each_kerastuner_algorithm_runs_by_name(self):
        for name in ("grid", "bayesian", "hyperband"):
            tuner = create_tuner(name, small_hypermodel(), max_trials=1, max_epochs=2,
                                 directory=self.get_temp_dir(), tensorboard=False)
            self.assertIsInstance(tuner.oracle, _oracle_class(name))
            search(tuner, *self.train, validation_data=self.validation)
            trials = tuner.oracle.trials.values()
            self.assertGreaterEqual(len(trials), 1, name)
            self.assertTrue(all(t.status == "COMPLETED" for t in trials), name)
            self.assertTrue(os.path.exists(os.path.join(tuner.project_dir, "results.csv")))

    def test_seed_zero_samples_the_same_trials_every_run(self):
        """KerasTuner reads seed=0 as "no seed" (a random one): kerastrain keeps it 0."""
        import random

        for name in ("random", "bayesian"):
            sampled = []
            for global_state in (1, 2):
                random.seed(global_state)  # what KerasTuner's unseeded oracles draw from
                tuner = create_tuner(name, small_hypermodel(), max_trials=3, seed=0,
                                     directory=self.get_temp_dir(), tensorboard=False)
                self.assertEqual(tuner.oracle.seed, 0)
                sampled.append([tuner.oracle.populate_space(str(i))["values"]
                                for i in range(3)])
            self.assertEqual(sampled[0], sampled[1], name)
            self.assertNotEqual(sampled[0][0], sampled[0][1], name)  # not one trial repeated

    def test_every_trial_starts_from_a_clear_session(self):
        """Without clear_session, trial 2's layers would be named dense_2, dense_3, ...."""
        names = []

        def build(hp):
            hp.Choice("units", [4, 8])
            model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4),
                                      keras.layers.Dense(3, activation="softmax")])
            model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
            names.append([layer.name for layer in model.layers])
            return model

        tuner = create_tuner("grid", build, max_trials=2, max_epochs=1,
                             directory=self.get_temp_dir(), tensorboard=False)
        search(tuner, *self.train, validation_data=self.validation)
        # KerasTuner builds once more before the search to discover the space.
        self.assertEqual(len(names), 3)
        self.assertEqual(names[1:], [["dense", "dense_1"]] * 2)

    def test_one_tensorboard_run_per_trial_with_hparams(self):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        tuner = create_tuner("random", small_hypermodel(), max_trials=2, max_epochs=2,
                             directory=self.get_temp_dir(), tensorboard=True)
        search(tuner, *self.train, validation_data=self.validation)
        root = os.path.join(tuner.project_dir, "tensorboard")
        self.assertEqual(sorted(os.listdir(root)), ["trial_0", "trial_1"])
        for trial_id, trial in tuner.oracle.trials.items():
            validation = EventAccumulator(os.path.join(root, f"trial_{trial_id}", "validation"))
            validation.Reload()
            accuracy = [e.tensor_proto.float_val[0] if e.tensor_proto.float_val
                        else e.tensor_proto.double_val[0]
                        for e in validation.Tensors("epoch_accuracy")]
            self.assertEqual(len(accuracy), 2)
            self.assertAllClose(max(accuracy), trial.score, rtol=1e-6)
            session = EventAccumulator(os.path.join(root, f"trial_{trial_id}"))
            session.Reload()
            self.assertTrue(session.PluginTagToContent("hparams"))
            self.assertIn("score", session.Tags()["tensors"])

    def test_time_limit_stops_starting_new_trials(self):
        tuner = create_tuner("random", small_hypermodel(), max_trials=5, max_epochs=1,
                             time_limit=1e-3, directory=self.get_temp_dir(), tensorboard=False)
        search(tuner, *self.train, validation_data=self.validation)
        self.assertEqual(len(tuner.oracle.trials), 1)

    def test_bad_arguments(self):
        directory = self.get_temp_dir()
        hypermodel = small_hypermodel()
        cases = [
            (dict(tuner="evolution"), ValueError,
             r"Argument `tuner` must be one of 'random', 'grid', 'bayesian', 'hyperband'. "
             r"Received: tuner='evolution'"),
            (dict(tuner="hyperband", cv=3), ValueError,
             r"Argument `cv` must be 0 with tuner='hyperband'. Received: cv=3"),
            (dict(cv=1), ValueError, r"Argument `cv` must be 0 \(hold-out validation\)"),
            (dict(pruner="median"), TypeError,
             r"Argument `pruner` must be None or a MedianStoppingPruner"),
            (dict(objective="val_f1"), ValueError,
             r"Argument `direction` must be given \('min' or 'max'\) for this objective"),
            (dict(direction="up"), ValueError, r"Argument `direction` must be one of 'min', 'max'"),
            (dict(max_trials=0), ValueError, r"Argument `max_trials` must be an integer >= 1"),
            (dict(max_epochs=0), ValueError, r"Argument `max_epochs` must be an integer >= 1"),
            (dict(seed=-1), ValueError, r"Argument `seed` must be an integer >= 0"),
            (dict(time_limit=0), ValueError, r"Argument `time_limit` must be > 0"),
            (dict(objective=3), TypeError, r"Argument `objective` must be a metric name"),
        ]
        for kwargs, error, message in cases:
            arguments = {"tuner": "random", "hypermodel": hypermodel, "directory": directory}
            arguments.update(kwargs)
            with pytest.raises(error, match=message):
                create_tuner(**arguments)
        self.assertFalse(os.listdir(directory))  # nothing written before the checks pass

    def test_missing_validation_data_and_unknown_objective(self):
        tuner = create_tuner("random", small_hypermodel(), max_trials=1, max_epochs=1,
                             directory=self.get_temp_dir(), tensorboard=False)
        with pytest.raises(ValueError, match=r"Argument `validation_data` must be given when "
                                             r"cv=0. .* create the tuner with cv >= 2"):
            search(tuner, *self.train)
        tuner = create_tuner("random", small_hypermodel(), max_trials=1, cv=2,
                             directory=self.get_temp_dir(), tensorboard=False)
        with pytest.raises(ValueError, match=r"Argument `validation_data` must be None when "
                                             r"cv >= 2. .* pass all training data as x, y."):
            search(tuner, *self.train, validation_data=self.validation)
        tuner = create_tuner("random", small_hypermodel(), objective="val_precision",
                             direction="max", max_trials=1, max_epochs=1,
                             directory=self.get_temp_dir(), tensorboard=False)
        with pytest.raises(ValueError, match=r"Argument `objective` must be a metric that fit\(\) "
                                             r"reports. Received: objective='val_precision'"):
            search(tuner, *self.train, validation_data=self.validation)


def _oracle_class(name):
    import keras_tuner

    return {"grid": keras_tuner.oracles.GridSearchOracle,
            "bayesian": keras_tuner.oracles.BayesianOptimizationOracle,
            "hyperband": keras_tuner.oracles.HyperbandOracle}[name]


def test_numpy_only_helpers_do_not_need_a_search():
    from kerastrain.tuning._tuner import _mean_curve

    np.testing.assert_allclose(_mean_curve([[1.0, 2.0, 3.0], [3.0, 4.0]]), [2.0, 3.0])


def blow_up_build(hp):
    """A model whose logits are multiplied by inf when ``blow_up``: a NaN training loss."""
    blow_up = hp.Boolean("blow_up")
    inputs = keras.Input((6,))
    x = keras.layers.Dense(4)(inputs)
    if blow_up:
        x = keras.layers.Rescaling(float("inf"))(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class FailedAndHyperbandTrialTest(TestCase):
    def setUp(self):
        super().setUp()
        x, y = blobs(90)
        self.train, self.validation = (x[:60], y[:60]), (x[60:], y[60:])

    @pytest.mark.slow
    def test_nan_training_loss_fails_the_trial_with_its_reason_under_val_accuracy(self):
        import contextlib
        import csv
        import io

        tuner = create_tuner("grid", blow_up_build, objective="val_accuracy", max_trials=2,
                             max_epochs=2, directory=self.get_temp_dir(), tensorboard=False)
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors):
            search(tuner, *self.train, validation_data=self.validation)
        self.assertNotIn("Traceback", errors.getvalue())
        with open(os.path.join(tuner.project_dir, "results.csv")) as stream:
            rows = {row["blow_up"]: row for row in csv.DictReader(stream)}
        self.assertEqual(rows["False"]["status"], "COMPLETED")
        failed = rows["True"]
        self.assertEqual((failed["status"], failed["score"], failed["reason"]),
                         ("FAILED", "", "training loss became nan at epoch 1"))
        self.assertEqual(tuner.oracle.get_best_trials(1)[0].hyperparameters["blow_up"], False)

    @pytest.mark.slow
    def test_non_finite_losses_do_not_count_as_consecutive_failures(self):
        """KerasTuner ends a search after 3 consecutive FAILED trials (a broken build);
        4 trials that all diverge are outcomes of their hyperparameters, not a bug."""
        import csv

        def build(hp):
            hp.Int("units", 2, 9)
            hp.Fixed("blow_up", True)
            return blow_up_build(hp)

        tuner = create_tuner("random", build, max_trials=4, max_epochs=1,
                             directory=self.get_temp_dir(), tensorboard=False)
        search(tuner, *self.train, validation_data=self.validation)
        with open(os.path.join(tuner.project_dir, "results.csv")) as stream:
            rows = list(csv.DictReader(stream))
        self.assertEqual([(r["status"], r["reason"]) for r in rows],
                         [("FAILED", "training loss became nan at epoch 1")] * 4)

    def test_trained_epochs_count_from_the_round_the_trial_continued(self):
        from kerastrain.tuning import _results

        record = {"curve": [0.5, 0.9, 0.8], "first_epoch": 3}
        self.assertEqual(_results.trained_epochs(record), 6)
        self.assertEqual(_results.trained_epochs({"curve": [0.5, 0.9]}), 2)
        self.assertIsNone(_results.trained_epochs({}))

    @pytest.mark.slow
    def test_hyperband_best_trial_is_retrained_for_the_epochs_of_its_score(self):
        import json

        from _tuning_helpers import tiny_config, write_npz

        from kerastrain.tuning import _driver, _results

        directory = self.get_temp_dir()
        config = tiny_config(os.path.join(directory, "out"), write_npz(directory),
                             search={"tuner": "hyperband", "max_trials": 4, "max_epochs": 9},
                             output={"retrain": True})
        fitted = []
        original = _driver.best_summary

        def spying_summary(tuner, splits, config):
            fit = tuner.hypermodel.fit
            tuner.hypermodel.fit = lambda *a, **k: fitted.append(k["epochs"]) or fit(*a, **k)
            return original(tuner, splits, config)

        _driver.best_summary = spying_summary
        self.addCleanup(setattr, _driver, "best_summary", original)
        tuner, summary = _driver.run_config(config)
        best = tuner.oracle.get_best_trials(1)[0]
        with open(os.path.join(tuner.project_dir, f"trial_{best.trial_id}",
                               _results.CURVE_FILE)) as stream:
            record = json.load(stream)
        # The trial trained from `first_epoch` to tuner/epochs; its score is its curve's best.
        self.assertEqual(record["first_epoch"], best.hyperparameters["tuner/initial_epoch"])
        self.assertEqual(len(record["curve"]), best.hyperparameters["tuner/epochs"]
                         - best.hyperparameters["tuner/initial_epoch"])
        self.assertAllClose(max(record["curve"]), best.score)
        expected = best.hyperparameters["tuner/epochs"]  # the round it was scored in
        self.assertEqual(summary["epochs"], expected)
        self.assertEqual(fitted, [expected])
        self.assertLess(expected, 9)  # seed 1337: found in an early round, so not 9 epochs
