"""Gradient statistics recorded inside `apply()`, against float64 numpy gradients."""

import keras
import numpy as np
import pytest

from kerastrain import optimizers
from kerastrain.testing import TestCase, reload_model


def _linear_data(rng):
    x = rng.normal(size=(16, 3)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    return x, y


def _numpy_mse_gradients(x, y, kernel, bias):
    """d/dW and d/db of mean((xW + b - y)^2), in float64."""
    x, y, kernel, bias = (np.asarray(a, np.float64) for a in (x, y, kernel, bias))
    residual = x @ kernel + bias - y
    scale = 2.0 / residual.size
    return scale * x.T @ residual, scale * residual.sum(axis=0)


def _model(optimizer, jit_compile):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, bias_initializer="ones")])
    model.compile(optimizer=optimizer, loss="mse", jit_compile=jit_compile)
    return model


class StatisticsTest(TestCase):
    def _check_one_step(self, optimizer, jit_compile, learning_rate):
        x, y = _linear_data(self.rng)
        model = _model(optimizer, jit_compile)
        kernel, bias = (np.asarray(w, np.float64) for w in model.get_weights())
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        grads = _numpy_mse_gradients(x, y, kernel, bias)
        stats = model.optimizer.gradient_statistics()
        norms = [np.linalg.norm(g) for g in grads]
        self.assertAllClose(stats["gradient_norms"], norms, rtol=1e-5)
        self.assertAllClose(stats["global_norm"], np.sqrt(sum(n**2 for n in norms)), rtol=1e-5)
        # Plain SGD: Δw = -lr g, so ‖Δw‖/‖w‖ = lr ‖g‖ / ‖w‖.
        ratios = [learning_rate * n / np.linalg.norm(w) for n, w in zip(norms, (kernel, bias))]
        self.assertAllClose(stats["update_ratios"], ratios, rtol=1e-4)
        self.assertEqual(model.optimizer.statistics_variable_paths,
                         [v.path for v in model.trainable_variables])
        return model

    def test_monitored_keras_sgd_matches_numpy_gradients_jit(self):
        self._check_one_step(optimizers.monitored(keras.optimizers.SGD(0.1)), True, 0.1)

    def test_monitored_keras_sgd_matches_numpy_gradients_no_jit(self):
        self._check_one_step(optimizers.monitored(keras.optimizers.SGD(0.1)), False, 0.1)

    def test_monitored_keeps_inner_updates_identical(self):
        x, y = _linear_data(self.rng)
        plain = _model(keras.optimizers.Adam(0.05), True)
        wrapped = _model(optimizers.monitored(keras.optimizers.Adam(0.05)), True)
        wrapped.set_weights(plain.get_weights())
        for model in (plain, wrapped):
            model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
        self.assertAllClose(wrapped.get_weights(), plain.get_weights(), rtol=1e-6)
        self.assertEqual(int(wrapped.optimizer.iterations), 8)

    def test_monitored_lion_records_and_reloads_without_custom_objects(self):
        x, y = _linear_data(self.rng)
        model = _model(optimizers.monitored(keras.optimizers.Lion(0.01)), False)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        revived = reload_model(model, self.get_temp_dir())
        self.assertIsInstance(revived.optimizer, optimizers.Monitored)
        self.assertIsInstance(revived.optimizer.inner_optimizer, keras.optimizers.Lion)
        for key, value in model.optimizer.gradient_statistics().items():
            self.assertAllClose(revived.optimizer.gradient_statistics()[key], value)
        self.run_serialization_test(model.optimizer)

    def test_monitored_rejects_non_optimizer(self):
        with pytest.raises(TypeError, match=r"Argument `optimizer` must be a keras.optimizers.Optimizer instance. Received: optimizer='adam' of type str"):
            optimizers.monitored("adam")

    def test_monitored_rejects_base_arguments(self):
        with pytest.raises(TypeError, match=r"Monitored takes no base-optimizer arguments. Received: \['clipnorm'\]"):
            optimizers.Monitored(keras.optimizers.SGD(), clipnorm=1.0)

    def test_statistics_before_build_raise(self):
        optimizer = optimizers.monitored(keras.optimizers.SGD())
        with pytest.raises(ValueError, match="has not been built yet"):
            optimizer.gradient_statistics()
