import csv
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from _callback_helpers import read_run, regression_data, scalar_series

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
from kerastrain.callbacks._monitor import MetricCurves
from kerastrain.testing import TestCase, get_json, tensorboard_server


def model():
    inputs = keras.Input((4,))
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="relu",
                                                                    name="hidden")],
                             name="inner")
    hidden = keras.layers.Dense(3, activation="tanh", name="squash")(inner(inputs))
    net = keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden), name="net")
    net.compile(optimizer=kerastrain.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    return net


def test_real_tensorboard_server_reads_our_tags(tmp_path):
    x, y = regression_data(samples=48)
    net = model()
    log_dir = tmp_path / "logs"
    callbacks = monitor(str(log_dir), (x[:16], y[:16]))
    history = net.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0,
                      callbacks=callbacks).history
    with tensorboard_server(log_dir) as url:
        # The loss and metric curves, named as by keras.callbacks.TensorBoard, in both runs.
        curves = {"train": {"epoch_loss", "epoch_mae"},
                  "validation": {"epoch_loss", "epoch_mae", "evaluation_loss_vs_iterations",
                                 "evaluation_mae_vs_iterations"}}
        tags = get_json(f"{url}/data/plugin/scalars/tags", until=lambda body: all(
            expected <= set(body.get(run, {})) for run, expected in curves.items()))
        for run, expected in curves.items():  # and none of our other scalars as epoch_*
            assert {tag for tag in tags[run] if tag.startswith(("epoch_", "evaluation_"))} \
                == expected
        for run, key in (("train", "loss"), ("validation", "val_loss"), ("train", "mae")):
            tag = "epoch_" + key.removeprefix("val_")
            series = get_json(f"{url}/data/plugin/scalars/scalars?run={run}&tag={tag}",
                              until=lambda body: len(body) == 2)
            assert [point[1] for point in series] == [0, 1]
            np.testing.assert_allclose([point[2] for point in series], history[key], rtol=1e-6)
        series = get_json(f"{url}/data/plugin/scalars/scalars?run=validation"
                          "&tag=evaluation_loss_vs_iterations", until=lambda body: len(body) == 2)
        assert [point[1] for point in series] == [3, 6]  # 36 samples in batches of 16: 3 steps
        np.testing.assert_allclose([point[2] for point in series], history["val_loss"], rtol=1e-6)
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
                         [MetricCurves, GradientNormLogger, UpdateRatioLogger, LearningRateLogger,
                          WeightHistograms, ActivationHistograms, DeadReLUDetector])
        self.assertEqual({c.update_freq for c in callbacks[:4]}, {5})
        self.assertEqual({c.freq for c in callbacks[4:]}, {2})
        self.assertEqual({c.log_dir for c in callbacks}, {"logs"})
        self.assertIsNone(monitor("logs", x)[4].probe)  # no targets: weights only

    def test_scalars_reach_history_and_csv_logger_without_jit(self):
        x, y = regression_data()
        net = model()
        optimizer = kerastrain.optimizers.monitored(keras.optimizers.SGD(0.01, momentum=0.5))
        net.compile(optimizer=optimizer, loss="mse", run_eagerly=True)
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
        self.assertIs(net.optimizer, optimizer)  # never replaced

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
            "LearningRateLogger", "ReduceLROnPlateau", "StoppingReason", "UpdateRatioLogger",
            "WeightHistograms", "monitor"])
        for name in kerastrain.callbacks.__all__:
            self.assertTrue(hasattr(kerastrain.callbacks, name))


class MetricCurvesTest(TestCase):
    def test_logs_routed_and_named_as_keras_does(self):
        net = model()
        net.optimizer.iterations.assign(7)
        log_dir = self.get_temp_dir()
        curves = MetricCurves(log_dir)
        curves.set_model(net)
        curves.on_train_begin()
        curves.on_test_end({"loss": 0.5, "mae": np.float32(0.25)})
        curves.on_epoch_end(3, {"loss": 1.0, "mae": keras.ops.convert_to_tensor(0.75),
                                "val_loss": 0.5, "val_mae": 0.25,
                                "per_class": np.ones(3), "stopping_message": "text"})
        curves.on_epoch_end(4, None)
        curves.on_train_end()
        train, validation = (read_run(os.path.join(log_dir, run))
                             for run in ("train", "validation"))
        self.assertEqual(sorted(train.Tags()["tensors"]), ["epoch_loss", "epoch_mae"])
        self.assertEqual(sorted(validation.Tags()["tensors"]), [
            "epoch_loss", "epoch_mae", "evaluation_loss_vs_iterations",
            "evaluation_mae_vs_iterations"])
        self.assertEqual(scalar_series(train, "epoch_loss"), [(3, 1.0)])
        self.assertEqual(scalar_series(train, "epoch_mae"), [(3, 0.75)])
        self.assertEqual(scalar_series(validation, "epoch_loss"), [(3, 0.5)])
        self.assertEqual(scalar_series(validation, "evaluation_mae_vs_iterations"), [(7, 0.25)])

    def test_batch_curves_every_update_freq_steps(self):
        x, y = regression_data(samples=40)
        log_dir = self.get_temp_dir()
        curves = MetricCurves(log_dir, update_freq=2)
        history = model().fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[curves])
        train = read_run(os.path.join(log_dir, "train"))
        self.assertEqual([step for step, _ in scalar_series(train, "batch_loss")],
                         [2, 4, 6, 8, 10])  # 5 steps per epoch; optimizer steps
        self.assertEqual(scalar_series(train, "batch_loss")[-1][1], history.history["loss"][-1])
        self.assertEqual([step for step, _ in scalar_series(train, "epoch_loss")], [0, 1])
        self.assertFalse(os.path.exists(os.path.join(log_dir, "validation")))

    def test_evaluate_outside_fit_writes_nothing(self):
        x, y = regression_data(samples=8)
        net = model()
        log_dir = os.path.join(self.get_temp_dir(), "logs")
        net.evaluate(x, y, verbose=0, callbacks=[MetricCurves(log_dir)])
        self.assertFalse(os.path.exists(log_dir))

    def test_config_and_arguments(self):
        curves = self.run_serialization_test(MetricCurves("logs", update_freq=3))
        self.assertEqual(curves.get_config(), {"log_dir": "logs", "update_freq": 3})
        with self.assertRaisesRegex(ValueError, r"Argument `log_dir` must be a directory\. "
                                    r"Received: log_dir=None Curves are only written to "
                                    r"TensorBoard\."):
            MetricCurves(None)
        with self.assertRaisesRegex(ValueError, r"Argument `update_freq` must be one of 'epoch'\. "
                                    r"Received: update_freq='batch' Use 'epoch' or a positive "
                                    r"integer number of steps\."):
            MetricCurves("logs", update_freq="batch")


# Both callbacks in one fit, in a fresh process: on the JAX and PyTorch backends, once a
# kerastrain writer has run without TensorFlow loaded, tensorboard's TensorFlow stub is in
# place for the rest of the process and Keras's callback cannot write.
_BOTH_CALLBACKS = """
import sys
import keras
from monitor_test import MetricCurves, model, regression_data
x, y = regression_data(samples=54)
model().fit(x, y, epochs=2, batch_size=9, validation_split=0.5, verbose=0, callbacks=[
    MetricCurves(sys.argv[1] + "/ours", update_freq=3),
    keras.callbacks.TensorBoard(sys.argv[1] + "/keras", update_freq=3, write_graph=False)])
"""


@pytest.mark.slow
def test_same_curves_as_keras_tensorboard(tmp_path):
    """Tags, steps and values equal to keras.callbacks.TensorBoard's (which needs TensorFlow;
    it runs on the JAX and PyTorch backends too when TensorFlow is installed, as in the test
    extra). 27 training and 27 validation samples in batches of 9: 3 steps and 3 validation
    batches per epoch, multiples of update_freq=3 (Keras's own callback drops an epoch's
    `epoch_*` or `evaluation_*` values when its count of training or validation batches so
    far is not a multiple of update_freq; MetricCurves always writes them)."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [here, os.path.dirname(os.path.dirname(here)), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", _BOTH_CALLBACKS, str(tmp_path)], env=env, check=True,
                   timeout=300, stdout=subprocess.DEVNULL)
    for run in ("train", "validation"):
        ours, theirs = (read_run(str(tmp_path / name / run)) for name in ("ours", "keras"))
        their_tags = set(theirs.Tags()["tensors"]) - {"epoch_learning_rate"}  # LearningRateLogger
        assert set(ours.Tags()["tensors"]) == their_tags
        assert {"epoch_loss", "epoch_mae"} < their_tags
        for tag in their_tags:
            expected = scalar_series(theirs, tag)
            assert [step for step, _ in scalar_series(ours, tag)] == [s for s, _ in expected], tag
            np.testing.assert_allclose([v for _, v in scalar_series(ours, tag)],
                                       [v for _, v in expected], rtol=1e-6, err_msg=tag)
    assert [s for s, _ in scalar_series(read_run(str(tmp_path / "ours" / "train")),
                                        "batch_loss")] == [3, 6]


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
        activations, dead_relu = callbacks[5], callbacks[6]
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
