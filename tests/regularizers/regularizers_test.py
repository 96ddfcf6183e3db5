"""Sparse label smoothing and the re-exported Keras penalties."""

import re

import keras
import numpy as np
import pytest

from kerastrain import regularizers
from kerastrain.testing import TestCase, reload_model


def numpy_reference(labels, logits, epsilon):
    """Float64, from Szegedy et al. 2016: q' = (1 - ε)·onehot + ε/K; loss = -Σ q' log softmax."""
    logits = logits.astype(np.float64)
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    k = logits.shape[-1]
    target = (1 - epsilon) * np.eye(k)[labels] + epsilon / k
    return -(target * log_p).sum(-1)


class SparseLabelSmoothingTest(TestCase):
    def setUp(self):
        super().setUp()
        self.logits = self.rng.normal(size=(6, 5)).astype("float32")
        self.labels = np.array([0, 4, 2, 2, 1, 3])

    def test_matches_reference(self):
        for epsilon in [0.0, 0.1, 0.35]:
            loss = regularizers.SparseCategoricalCrossentropy(
                from_logits=True, label_smoothing=epsilon, reduction=None)
            self.assertAllClose(loss(self.labels, self.logits),
                                numpy_reference(self.labels, self.logits, epsilon), rtol=1e-5)

    def test_equals_keras_categorical_on_one_hot(self):
        probabilities = keras.ops.softmax(self.logits)
        for epsilon in [0.0, 0.2]:
            for from_logits, y_pred in [(True, self.logits), (False, probabilities)]:
                ours = regularizers.SparseCategoricalCrossentropy(
                    from_logits=from_logits, label_smoothing=epsilon)
                keras_loss = keras.losses.CategoricalCrossentropy(
                    from_logits=from_logits, label_smoothing=epsilon)
                self.assertAllClose(ours(self.labels, y_pred),
                                    keras_loss(np.eye(5)[self.labels], y_pred), rtol=1e-6)

    def test_zero_smoothing_equals_keras_sparse(self):
        ours = regularizers.SparseCategoricalCrossentropy(from_logits=True)
        keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.assertAllClose(ours(self.labels[:, None], self.logits),
                            keras_loss(self.labels, self.logits), rtol=1e-6)

    def test_equals_torch_cross_entropy(self):
        import torch
        expected = torch.nn.functional.cross_entropy(
            torch.tensor(self.logits, dtype=torch.float64), torch.tensor(self.labels),
            label_smoothing=0.15).numpy()
        ours = regularizers.SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.15)
        self.assertAllClose(ours(self.labels, self.logits), expected, rtol=1e-5)

    def test_fit_and_keras_file_round_trip(self):
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
        loss = regularizers.SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
        model.compile(optimizer="sgd", loss=loss)
        history = model.fit(self.logits, self.labels % 3, epochs=2, verbose=0)
        self.assertTrue(np.all(np.isfinite(history.history["loss"])))
        revived = reload_model(model, self.get_temp_dir())
        self.assertIsInstance(revived.loss, regularizers.SparseCategoricalCrossentropy)
        self.assertEqual(revived.loss.get_config(), loss.get_config())

    def test_config_round_trip(self):
        self.run_serialization_test(regularizers.SparseCategoricalCrossentropy(
            from_logits=True, label_smoothing=0.3, axis=-1, name="smooth"))


def test_keras_penalties_are_reexported():
    assert regularizers.L1 is keras.regularizers.L1
    assert regularizers.L2 is keras.regularizers.L2
    assert regularizers.L1L2 is keras.regularizers.L1L2


def test_l1_activity_penalty_on_code_is_mean_over_batch():
    # Documented behaviour: Keras adds l1·Σ|h| / batch_size for an activity penalty.
    layer = keras.layers.Dense(3, activity_regularizer=regularizers.L1(0.5))
    x = np.random.default_rng(1).normal(size=(4, 2)).astype("float32")
    code = keras.ops.convert_to_numpy(layer(x)).astype(np.float64)
    np.testing.assert_allclose(float(layer.losses[0]), 0.5 * np.abs(code).sum() / 4, rtol=1e-5)


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(label_smoothing=1.5), ValueError,
     "Argument `label_smoothing` must be in [0, 1]. Received: label_smoothing=1.5"),
    (dict(label_smoothing=-0.1), ValueError,
     "Argument `label_smoothing` must be in [0, 1]. Received: label_smoothing=-0.1"),
    (dict(from_logits="yes"), TypeError,
     "Argument `from_logits` must be a bool. Received: from_logits='yes' of type str"),
    (dict(axis=1.0), TypeError, "Argument `axis` must be an integer. Received: axis=1.0"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        regularizers.SparseCategoricalCrossentropy(**kwargs)
