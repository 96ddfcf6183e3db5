import os
import warnings

import keras
import numpy as np
import pytest
from _callback_helpers import mlp, read_run, regression_data, scalar_series

from kerastrain.callbacks import DeadReLUDetector
from kerastrain.callbacks._dead_relu import dead_units, dormant_units
from kerastrain.testing import TestCase


def set_dense(layer, kernel, bias):
    layer.set_weights([np.asarray(kernel, "float32"), np.asarray(bias, "float32")])


def forced_model(rng):
    """Nested model whose dead units are forced by negative biases.

    Inputs are in [0, 1)^4 and every kernel entry in [-0.1, 0.1], so |x·w| < 0.4:
    a bias of -100 kills a unit for every input, a bias of +1 keeps it alive.
    """
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu",
                                                                    name="forced")], name="inner")
    inputs = keras.Input((4,))
    hidden = inner(inputs)
    hidden = keras.layers.Dense(5, name="pre")(hidden)
    hidden = keras.layers.ReLU(name="relu_layer")(hidden)
    hidden = keras.layers.Dense(3, name="lin")(hidden)
    hidden = keras.layers.Activation("relu", name="act")(hidden)
    hidden = keras.layers.Dense(6, activation="relu", name="healthy")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(hidden), name="outer")
    small = lambda shape: rng.uniform(-0.1, 0.1, size=shape)  # noqa: E731
    bias = np.ones(8)
    bias[[1, 4, 6]] = -100
    set_dense(inner.get_layer("forced"), small((4, 8)), bias)
    set_dense(model.get_layer("pre"), small((8, 5)), [-100, 1, -100, 1, 1])
    set_dense(model.get_layer("lin"), small((5, 3)), [1, -100, 1])
    set_dense(model.get_layer("healthy"), small((3, 6)), np.ones(6))
    return model


class PureFunctionsTest(TestCase):
    def test_dead_units(self):
        self.assertEqual(dead_units([0.0, 0.3, 0.0, 1e-30]).tolist(), [0, 2])

    def test_dormant_units_match_formula(self):
        # Sokar et al. 2023, eq. 1: s_i = E|h_i| / ((1/H) sum_k E|h_k|); dormant iff s_i <= tau.
        mean_abs = self.rng.uniform(0, 1, size=20) ** 4
        for tau in (0.0, 0.05, 0.3, 1.0):
            scores = mean_abs / (mean_abs.sum() / mean_abs.size)
            expected = [i for i in range(20) if scores[i] <= tau]
            self.assertEqual(dormant_units(mean_abs, tau).tolist(), expected)
        self.assertEqual(dormant_units(np.zeros(3), 0.0).tolist(), [0, 1, 2])
        self.assertEqual(dormant_units([0.0, 2.0, 0.0], 0.0).tolist(), [0, 2])


class DeadReLUDetectorTest(TestCase):
    def test_finds_exactly_the_forced_dead_units(self):
        model = forced_model(self.rng)
        probe = self.rng.uniform(0, 1, size=(50, 4)).astype("float32")
        detector = DeadReLUDetector(probe, probe_batch_size=16)
        detector.set_model(model)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            values = detector.measure()
        dead = {name: units.tolist() for name, units in detector.dead_units.items()}
        self.assertEqual(dead, {"inner/forced": [1, 4, 6], "relu_layer": [0, 2], "act": [1],
                                "healthy": []})
        self.assertEqual(values["dead_relu_fraction/inner/forced"], 3 / 8)
        self.assertEqual(values["dead_relu_fraction/relu_layer"], 2 / 5)
        self.assertEqual(values["dead_relu_fraction/healthy"], 0.0)
        self.assertEqual(values["dormant_fraction/healthy"], 0.0)
        # At most 3/8 of a layer is dead: below the default warning_fraction of 0.5.
        self.assertEqual([w for w in record if "DeadReLUDetector" in str(w.message)], [])

    def test_conv_units_and_dormant_scores_match_numpy(self):
        inputs = keras.Input((5, 5, 2))
        conv = keras.layers.Conv2D(4, 3, activation="relu", name="conv")
        model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(conv(inputs)))
        kernel = self.rng.uniform(-0.1, 0.1, size=(3, 3, 2, 4)) * np.array([1, 1, 0.02, 1])
        conv.set_weights([kernel.astype("float32"),
                          np.array([-100, 0.1, 0.01, -100], dtype="float32")])
        probe = self.rng.uniform(0, 1, size=(10, 5, 5, 2)).astype("float32")
        detector = DeadReLUDetector(probe, dormant_threshold=0.2, probe_batch_size=3,
                                    warning_fraction=1.0)
        detector.set_model(model)
        detector.measure()
        # float64 reference: the convolution written out, then Sokar et al.'s score.
        x = probe.astype(np.float64)
        outputs = np.zeros((10, 3, 3, 4))
        for i in range(3):
            for j in range(3):
                patch = x[:, i:i + 3, j:j + 3, :]
                outputs[:, i, j, :] = np.einsum("nhwc,hwcu->nu", patch, kernel)
        outputs = np.maximum(outputs + np.array([-100, 0.1, 0.01, -100]), 0)
        mean_abs = np.abs(outputs).mean(axis=(0, 1, 2))
        scores = mean_abs / mean_abs.mean()
        self.assertEqual(detector.dead_units["conv"].tolist(), [0, 3])
        self.assertEqual(detector.dormant_units["conv"].tolist(),
                         np.flatnonzero(scores <= 0.2).tolist())

    def test_fit_logs_and_warns_with_remedies(self):
        x, y = regression_data()
        model = mlp(hidden=4)
        set_dense(model.get_layer("hidden"), np.zeros((4, 4)), [-1, -1, -1, 1])
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        log_dir = self.get_temp_dir()
        detector = DeadReLUDetector(x[:20], log_dir, probe_batch_size=8)
        with pytest.warns(UserWarning, match=r"DeadReLUDetector: 3 of 4 units of layer "
                          r"`.*hidden` are dead \(zero for every probe sample\) at epoch 0\. "
                          r"Remedies: lower the learning rate, initialize biases to a small "
                          r"positive value"):
            history = model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25,
                                verbose=0, callbacks=[detector])
        (tag,) = [key for key in history.history if key.startswith("dead_relu_fraction/")]
        self.assertEqual(history.history[tag], [0.75, 0.75])
        self.assertEqual(scalar_series(read_run(os.path.join(log_dir, "train")), tag),
                         [(0, 0.75), (1, 0.75)])

    def test_model_without_relu(self):
        x, y = regression_data()
        model = mlp(activation="tanh")
        model.compile(optimizer="sgd", loss="mse")
        with self.assertRaisesRegex(
                ValueError, r"Argument `model` must have at least one ReLU layer for "
                r"DeadReLUDetector\. Received: model='sequential(_\d+)?' Watched: Dense/Conv "
                r"with activation='relu', ReLU and Activation\('relu'\) layers\."):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[DeadReLUDetector(x)])
        model.fit(x, y, epochs=1, verbose=0, callbacks=[DeadReLUDetector(x, allow_no_relu=True)])

    def test_probe_of_wrong_shape_fails_before_training(self):
        x, y = regression_data()
        model = mlp()
        model.compile(optimizer="sgd", loss="mse")
        weights = model.get_weights()
        with self.assertRaisesRegex(
                ValueError, r"Argument `probe_data` must have inputs of shape \(None, 4\) "
                r"\(None: any size\)\. Received: probe_data='x of shape \(8, 3\)' Use samples "
                r"shaped like the training data\."):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[DeadReLUDetector(x[:8, :3])])
        self.assertAllClose(model.get_weights(), weights, rtol=0, atol=0)

    def test_bad_arguments(self):
        x = np.zeros((4, 4), "float32")
        cases = [
            (dict(probe_data=None), TypeError, r"Argument `probe_data` must be an array"),
            (dict(probe_data="abc"), TypeError,
             r"Argument `probe_data` must be an array with a batch axis"),
            (dict(probe_data=(x, x[:2])), ValueError,
             r"Argument `probe_data` must have the same number of samples in every array\. "
             r"Received: probe_data='arrays with \[2, 4\] samples'"),
            (dict(probe_data=x[:0]), ValueError,
             r"Argument `probe_data` must contain at least one sample"),
            (dict(probe_data=(x, x, x, x)), ValueError,
             r"Argument `probe_data` must be x or a tuple \(x,\), \(x, y\) or "
             r"\(x, y, sample_weight\)\. Received: probe_data='tuple of length 4'"),
            (dict(probe_data=x, dormant_threshold=1.5), ValueError,
             r"Argument `dormant_threshold` must be in \[0, 1\]\. Received: dormant_threshold=1\.5"),
            (dict(probe_data=x, warning_fraction=0), ValueError,
             r"Argument `warning_fraction` must be in \(0, 1\]"),
            (dict(probe_data=x, freq=0), ValueError, r"Argument `freq` must be an integer >= 1"),
            (dict(probe_data=x, probe_batch_size=0), ValueError,
             r"Argument `probe_batch_size` must be an integer >= 1"),
            (dict(probe_data=x, allow_no_relu="no"), TypeError,
             r"Argument `allow_no_relu` must be True or False"),
        ]
        for kwargs, error, message in cases:
            with self.subTest(kwargs=kwargs), self.assertRaisesRegex(error, message):
                DeadReLUDetector(**kwargs)

    def test_serialization(self):
        probe = self.rng.normal(size=(3, 4)).astype("float32")
        detector = DeadReLUDetector(probe, "logs", freq=2, dormant_threshold=0.1,
                                    warning_fraction=0.9, probe_batch_size=2)
        revived = self.run_serialization_test(detector)
        self.assertEqual(revived.probe.x.dtype, np.float32)
        np.testing.assert_array_equal(revived.probe.x, probe)
