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
