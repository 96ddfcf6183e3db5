import os

import keras
import numpy as np
from _callback_helpers import (
    histogram_table,
    mlp,
    mlp_gradients,
    plugin_of,
    read_run,
    regression_data,
    scalar_series,
)

from kerastrain import _backend, optimizers
from kerastrain.callbacks import LearningRateLogger, UpdateRatioLogger, WeightHistograms
from kerastrain.callbacks._probe import Probe
from kerastrain.callbacks._weights import momentum_value, probe_gradients
from kerastrain.testing import TestCase


class WeightHistogramsTest(TestCase):
    def test_probe_gradients_match_reference(self):
        x, y = regression_data(samples=13)
        model = mlp()
        model.compile(optimizer="sgd", loss="mse")
        probe = Probe((x, y), batch_size=5)
        loss, grads = probe_gradients(_backend.make_value_and_grad(model),
                                      _backend.trainable_values(model), probe)
        expected = mlp_gradients(model.get_weights(), x, y)
        self.assertAllClose(grads, expected, rtol=1e-5, atol=1e-7)
        prediction = np.maximum(x @ model.get_weights()[0] + model.get_weights()[1], 0)
        prediction = prediction @ model.get_weights()[2] + model.get_weights()[3]
        self.assertAllClose(loss, np.mean((prediction - y) ** 2), rtol=1e-5)

    def test_fit_writes_weight_and_gradient_histograms(self):
        x, y = regression_data()
        model = mlp()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        log_dir = self.get_temp_dir()
        callback = WeightHistograms(log_dir, freq=2, probe_data=(x[:12], y[:12]),
                                    probe_batch_size=5)
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
        run = read_run(os.path.join(log_dir, "train"))
        expected = mlp_gradients(model.get_weights(), x[:12], y[:12])
        for variable, weight, gradient in zip(model.weights, model.get_weights(), expected):
            for tag, values in ((f"weights/{variable.path}", weight),
                                (f"gradients/{variable.path}", gradient)):
                self.assertEqual(plugin_of(run, tag), "histograms")
                step, table = histogram_table(run, tag)
                self.assertEqual((step, table[:, 2].sum()), (1, values.size))
                if values.min() < values.max():
                    self.assertAllClose([table[0, 0], table[-1, 1]],
                                        [values.min(), values.max()], rtol=1e-4, atol=1e-7)
        self.assertEqual(len(run.Tensors(f"weights/{model.weights[0].path}")), 1)

    def test_needs_targets_for_gradients(self):
        x, y = regression_data()
        model = mlp()
        model.compile(optimizer="sgd", loss="mse")
        with self.assertRaisesRegex(
                ValueError, r"Argument `probe_data` must include targets, as a tuple \(x, y\)\. "
                r"Received: probe_data='x only' Gradient histograms need a loss"):
            model.fit(x, y, epochs=1, verbose=0,
                      callbacks=[WeightHistograms(self.get_temp_dir(), probe_data=x)])

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, r"Argument `log_dir` must be a directory\. "
                                    r"Received: log_dir=None Histograms are only written"):
            WeightHistograms(None)
        with self.assertRaisesRegex(ValueError, r"Argument `freq` must be an integer >= 1"):
            WeightHistograms("logs", freq=0)

    def test_serialization(self):
        x, y = regression_data(samples=3)
        revived = self.run_serialization_test(
            WeightHistograms("logs", freq=2, probe_data=(x, y), probe_batch_size=2))
        np.testing.assert_array_equal(revived.probe.y, y)
        self.run_serialization_test(WeightHistograms("logs"))


class UpdateRatioLoggerTest(TestCase):
    def test_matches_reference(self):
        # Plain SGD: w' = w - lr g, so ||dw|| / ||w|| = lr ||g|| / ||w||; 0 for zero biases.
        x, y = regression_data(samples=16)
        model = mlp()
        model.compile(optimizer=optimizers.monitored(keras.optimizers.SGD(0.05)),
                      loss="mse")
        weights = model.get_weights()
        log_dir = self.get_temp_dir()
        history = model.fit(x, y, batch_size=16, epochs=1, verbose=0,
                            callbacks=[UpdateRatioLogger(log_dir)])
        grads = mlp_gradients(weights, x, y)
        for variable, weight, gradient in zip(model.trainable_variables, weights, grads):
            norm = np.linalg.norm(weight)
            expected = 0.05 * np.linalg.norm(gradient) / norm if norm > 0 else 0.0
            tag = f"update_ratio/{variable.path}"
            self.assertAllClose(history.history[tag], [expected], rtol=1e-4, atol=1e-9)
            series = scalar_series(read_run(os.path.join(log_dir, "train")), tag)
            self.assertAllClose([value for _, value in series], [expected], rtol=1e-4, atol=1e-9)

    def test_serialization_and_arguments(self):
        self.run_serialization_test(UpdateRatioLogger("logs", update_freq=5,
                                                      wrap_optimizer=False))
        with self.assertRaisesRegex(TypeError, r"Argument `wrap_optimizer` must be True"):
            UpdateRatioLogger(wrap_optimizer=None)


class LearningRateLoggerTest(TestCase):
    def test_scheduled_learning_rate_every_step(self):
        x, y = regression_data()
        schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=3,
                                                               decay_rate=0.5)
        model = mlp()
        model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9), loss="mse",
                      run_eagerly=True)
        log_dir = self.get_temp_dir()
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0,
                            callbacks=[LearningRateLogger(log_dir, update_freq=1)])
        series = scalar_series(read_run(os.path.join(log_dir, "train")), "learning_rate")
        # alpha_t = alpha_0 * r^(t / T) at the optimizer's step t (Keras's ExponentialDecay).
        self.assertEqual([step for step, _ in series], list(range(1, 9)))
        self.assertAllClose([value for _, value in series],
                            [0.1 * 0.5 ** (t / 3) for t in range(1, 9)], rtol=1e-6)
        self.assertAllClose(history.history["learning_rate"], [0.1 * 0.5 ** (4 / 3),
                                                               0.1 * 0.5 ** (8 / 3)], rtol=1e-6)
        self.assertAllClose(history.history["momentum"], [0.9, 0.9])

    def test_momentum_of_common_optimizers(self):
        self.assertEqual(momentum_value(keras.optimizers.Adam(beta_1=0.8)), 0.8)
        self.assertEqual(momentum_value(keras.optimizers.RMSprop(momentum=0.5)), 0.5)
        self.assertIsNone(momentum_value(keras.optimizers.Adagrad()))
        sgd = keras.optimizers.SGD(momentum=0.9)
        sgd.iterations.assign(4)
        sgd.momentum = lambda t: 0.9 - 0.01 * float(t)  # a schedule of the step
        self.assertAllClose(momentum_value(sgd), 0.9 - 0.01 * 4)
        adam = keras.optimizers.Adam(beta_1=lambda: 0.7)  # Keras: callable of no arguments
        self.assertAllClose(momentum_value(adam), 0.7)

    def test_needs_a_compiled_model(self):
        callback = LearningRateLogger()
        callback.set_model(mlp())
        with self.assertRaisesRegex(ValueError, r"LearningRateLogger needs a compiled model"):
            callback.on_train_begin()

    def test_serialization(self):
        self.run_serialization_test(LearningRateLogger("logs", update_freq=3))
