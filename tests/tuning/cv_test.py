"""k-fold cross-validation: stratified folds, and a trial's score is the mean of its folds."""

import csv
import os

import keras
import keras_tuner
import numpy as np
import pytest
from _tuning_helpers import blobs

from kerastrain.testing import TestCase
from kerastrain.tuning import MLPHyperModel, create_tuner, kfold_indices, search


class KFoldTest(TestCase):
    def test_folds_partition_the_data_and_keep_class_proportions(self):
        y = np.array([0] * 30 + [1] * 60 + [2] * 90)
        folds = kfold_indices(y, 3, seed=0)
        self.assertEqual(len(folds), 3)
        validation = np.concatenate([v for _, v in folds])
        self.assertEqual(sorted(validation.tolist()), list(range(len(y))))
        for train, valid in folds:
            self.assertEqual(set(train) & set(valid), set())
            self.assertEqual(np.bincount(y[valid]).tolist(), [10, 20, 30])

    def test_regression_targets_use_plain_kfold(self):
        y = np.linspace(0.0, 1.0, 10)
        folds = kfold_indices(y, 5, seed=0)
        self.assertEqual([len(v) for _, v in folds], [2] * 5)

    def test_same_seed_same_folds(self):
        y = np.arange(40) % 2
        first = kfold_indices(y, 4, seed=3)
        second = kfold_indices(y, 4, seed=3)
        for (a, b), (c, d) in zip(first, second):
            self.assertEqual((a.tolist(), b.tolist()), (c.tolist(), d.tolist()))

    def test_bad_arguments(self):
        y = np.arange(12) % 2
        with pytest.raises(ValueError, match=r"Argument `cv` must be 0 \(hold-out validation\) "
                                             r"or an integer >= 2 \(number of folds\). Received: cv=1"):
            kfold_indices(y, 1)
        with pytest.raises(TypeError, match=r"Argument `cv` must be an integer. Received: cv=2.0"):
            kfold_indices(y, 2.0)
        with pytest.raises(ValueError, match=r"Argument `cv` must be >= 2 for k-fold indices"):
            kfold_indices(y, 0)
        with pytest.raises(ValueError, match=r"Argument `cv` must be at most the number of "
                                             r"training examples \(12\). Received: cv=13"):
            kfold_indices(y, 13, stratified=False)
        with pytest.raises(ValueError, match=r"Argument `cv` must be at most the size of the "
                                             r"smallest class \(2\)"):
            kfold_indices(np.array([0, 0, 1, 1, 1, 1]), 3)


class CrossValidatedTrialTest(TestCase):
    def test_score_is_the_mean_of_per_fold_runs(self):
        """The trial's score and std equal those of k runs made by hand, fold by fold."""
        x, y = blobs(90)
        hypermodel = MLPHyperModel(input_shape=(6,), num_classes=3, layers=[1, 1], units=[8],
                                   activations=["tanh"], initializers=["glorot_uniform"],
                                   optimizers=["adam"], learning_rate=[0.01, 0.01],
                                   schedules=["constant"], l2=[0, 0], dropout=[0.0, 0.0],
                                   batch_norm=[False], batch_sizes=[16])
        tuner = create_tuner("random", hypermodel, max_trials=1, max_epochs=3, cv=3, seed=7,
                             directory=self.get_temp_dir(), tensorboard=False)
        search(tuner, x, y)
        trial = tuner.oracle.get_best_trials(1)[0]

        per_fold = []
        for train, valid in kfold_indices(y, 3, seed=7):
            keras.backend.clear_session()
            keras.utils.set_random_seed(7)
            hp = keras_tuner.HyperParameters()
            model = hypermodel.build(hp)
            history = hypermodel.fit(hp, model, x[train], y[train], epochs=3, verbose=0,
                                     validation_data=(x[valid], y[valid]))
            per_fold.append(max(history.history["val_accuracy"]))
        self.assertAllClose(trial.score, np.mean(per_fold), rtol=1e-6)
        self.assertAllClose(trial.metrics.get_last_value("score_std"), np.std(per_fold),
                            rtol=1e-6, atol=1e-7)
        self.assertEqual(trial.metrics.get_last_value("epochs"), 9)
        with open(os.path.join(tuner.project_dir, "results.csv")) as stream:
            row = next(csv.DictReader(stream))
        self.assertAllClose(float(row["score"]), np.mean(per_fold), rtol=1e-6)
        self.assertAllClose(float(row["score_std"]), np.std(per_fold), rtol=1e-6, atol=1e-7)
