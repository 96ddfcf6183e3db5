import csv
import os

import keras
import numpy as np
from _callback_helpers import regression_data

import kerastrain
from kerastrain.callbacks import (
    ActivationHistograms,
    DeadReLUDetector,
    GradientNormLogger,
    LearningRateLogger,
    UpdateRatioLogger,
    WeightHistograms,
    monitor,
)
from kerastrain.testing import TestCase, get_json, tensorboard_server


def model():
    inputs = keras.Input((4,))
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="relu",
                                                                    name="hidden")],
                             name="inner")
    hidden = keras.layers.Dense(3, activation="tanh", name="squash")(inner(inputs))
    net = keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden), name="net")
    net.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return net


def test_real_tensorboard_server_reads_our_tags(tmp_path):
    x, y = regression_data(samples=48)
    net = model()
    log_dir = tmp_path / "logs"
    callbacks = monitor(str(log_dir), (x[:16], y[:16]))
    net.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0,
            callbacks=callbacks)
    with tensorboard_server(log_dir) as url:
        expected_scalars = {"gradient_norm/global", "gradient_norm/inner/hidden",
                            "update_ratio/inner/hidden/kernel", "learning_rate", "momentum",
                            "dead_relu_fraction/inner/hidden", "dormant_fraction/inner/hidden",
                            "activation_saturation/squash", "activation_near_zero/inner/hidden"}
        scalars = get_json(f"{url}/data/plugin/scalars/tags",
                           until=lambda body: expected_scalars <= set(body.get("train", {})))
        assert "train" in scalars
        expected_histograms = {"weights/inner/hidden/kernel", "gradients/squash/kernel",
                               "activations/inner/hidden", "activations/squash"}
        for plugin in ("histograms", "distributions"):
            tags = get_json(f"{url}/data/plugin/{plugin}/tags",
                            until=lambda body: expected_histograms <= set(body.get("train", {})))
            assert expected_histograms <= set(tags["train"])
        series = get_json(f"{url}/data/plugin/scalars/scalars?run=train&tag=learning_rate",
                          until=lambda body: len(body) == 2)
        assert [point[1] for point in series] == [0, 1]
        np.testing.assert_allclose([point[2] for point in series], [0.01, 0.01], rtol=1e-6)


class MonitorTest(TestCase):
    def test_standard_set(self):
        x, y = regression_data()
        callbacks = monitor("logs", (x, y), update_freq=5, histogram_freq=2)
        self.assertEqual([type(c) for c in callbacks],
                         [GradientNormLogger, UpdateRatioLogger, LearningRateLogger,
                          WeightHistograms, ActivationHistograms, DeadReLUDetector])
        self.assertEqual({c.update_freq for c in callbacks[:3]}, {5})
        self.assertEqual({c.freq for c in callbacks[3:]}, {2})
        self.assertIsNone(monitor("logs", x)[3].probe)  # no targets: weights only

    def test_scalars_reach_history_and_csv_logger_without_jit(self):
        x, y = regression_data()
        net = model()
        net.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.5), loss="mse",
                    run_eagerly=True)
        log_dir = self.get_temp_dir()
        csv_path = os.path.join(log_dir, "log.csv")
        history = net.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[
            *monitor(log_dir, x[:8]), keras.callbacks.CSVLogger(csv_path)])
        with open(csv_path) as handle:
            rows = list(csv.DictReader(handle))
        self.assertEqual(len(rows), 2)
        for key in ("gradient_norm/global", "update_ratio/inner/hidden/kernel",
                    "learning_rate", "momentum", "dead_relu_fraction/inner/hidden",
                    "activation_mean/squash"):
            self.assertEqual(len(history.history[key]), 2, key)
            self.assertAllClose(float(rows[1][key]), history.history[key][1], rtol=1e-6)
        self.assertIsInstance(net.optimizer, kerastrain.optimizers.Monitored)

    def test_unwritable_log_dir_fails_before_training(self):
        blocker = os.path.join(self.get_temp_dir(), "file")
        with open(blocker, "w") as handle:
            handle.write("not a directory")
        x, y = regression_data()
        net = model()
        weights = net.get_weights()
        with self.assertRaisesRegex(ValueError, r"Argument `log_dir` must be a writable "
                                    r"directory\. Received: log_dir='.*file/logs'"):
            net.fit(x, y, epochs=1, verbose=0,
                    callbacks=monitor(os.path.join(blocker, "logs"), (x, y)))
        self.assertAllClose(net.get_weights(), weights, rtol=0, atol=0)

    def test_bad_arguments(self):
        x = np.zeros((2, 4), "float32")
        with self.assertRaisesRegex(ValueError, r"Argument `log_dir` must be a directory\. "
                                    r"Received: log_dir=None monitor\(\) writes to TensorBoard"):
            monitor(None, x)
        with self.assertRaisesRegex(ValueError, r"Argument `histogram_freq` must be an integer"):
            monitor("logs", x, histogram_freq=0)
        with self.assertRaisesRegex(ValueError, r"Argument `update_freq` must be one of 'epoch'"):
            monitor("logs", x, update_freq="batch")

    def test_public_api(self):
        self.assertEqual(sorted(kerastrain.callbacks.__all__), [
            "ActivationHistograms", "DeadReLUDetector", "EarlyStopping", "GradientNormLogger",
            "LearningRateLogger", "StoppingReason", "UpdateRatioLogger", "WeightHistograms",
            "monitor"])
        for name in kerastrain.callbacks.__all__:
            self.assertTrue(hasattr(kerastrain.callbacks, name))


class Counting(keras.layers.Layer):
    """Identity that counts its (eager) calls."""

    calls = 0

    def call(self, inputs):
        Counting.calls += 1
        return inputs


class SharedProbeTest(TestCase):
    def test_activations_and_dead_relu_share_one_forward_pass(self):
        x, y = regression_data(samples=20)
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(5, activation="relu")(Counting()(inputs))
        net = keras.Model(inputs, keras.layers.Dense(1)(hidden))
        net.compile(optimizer="sgd", loss="mse")
        callbacks = monitor(self.get_temp_dir(), x, probe_batch_size=8)
        activations, dead_relu = callbacks[4], callbacks[5]
        for callback in (activations, dead_relu):
            callback.set_model(net)
            callback.on_train_begin()
        Counting.calls = 0
        activations.on_epoch_end(0, {})
        dead_relu.on_epoch_end(0, {})
        self.assertEqual(Counting.calls, 3)  # 20 samples in batches of 8, once
        dead_relu.on_epoch_end(1, {})  # the same reader again: a fresh pass
        self.assertEqual(Counting.calls, 6)
        alone = DeadReLUDetector(x, probe_batch_size=8)
        alone.set_model(net)
        alone.measure()  # another probe object: its own pass
        self.assertEqual(Counting.calls, 9)
        for callback in (activations, dead_relu):
            callback.on_train_end()
