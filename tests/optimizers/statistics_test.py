"""Gradient statistics recorded inside `apply()`, against float64 numpy gradients."""

import keras
import numpy as np
import pytest
from optimizer_helpers import mse_gradients

from kerastrain import optimizers
from kerastrain.testing import TestCase, reload_model


def _linear_data(rng):
    x = rng.normal(size=(16, 3)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    return x, y


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
        grads = mse_gradients(x, y, kernel, bias)
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


def _sgd_norms_per_step(x, y, kernel, bias, learning_rate, steps):
    """(‖g‖ per variable, ‖Δw‖/‖w‖ per variable) at each full-batch SGD step (float64)."""
    records = []
    for _ in range(steps):
        grads = mse_gradients(x, y, kernel, bias)
        norms = [np.linalg.norm(g) for g in grads]
        ratios = [learning_rate * n / np.linalg.norm(w) for n, w in zip(norms, (kernel, bias))]
        records.append((norms, ratios))
        kernel, bias = kernel - learning_rate * grads[0], bias - learning_rate * grads[1]
    return records


class _ReadEachEpoch(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        stats = self.model.optimizer.gradient_statistics()
        self.seen.append({key: np.asarray(keras.ops.convert_to_numpy(value))
                          for key, value in stats.items()})


STATISTICS_SCHEDULE_CASES = {
    "chain": lambda: optimizers.SGD(0.1, statistics_every=3),
    "chain_with_base_clipping": lambda: optimizers.SGD(0.1, statistics_every=3, clipnorm=1e9),
    "monitored": lambda: optimizers.monitored(keras.optimizers.SGD(0.1), statistics_every=3),
    "lookahead": lambda: optimizers.Lookahead(keras.optimizers.SGD(0.1), sync_period=1000,
                                              statistics_every=3),
}


class StatisticsScheduleTest(TestCase):
    def test_records_first_step_and_every_nth(self):
        # statistics_every=3 records steps 1, 4, 7; in between the last recording stays.
        x, y = _linear_data(np.random.default_rng(1))
        for kind in sorted(STATISTICS_SCHEDULE_CASES):
            for jit_compile in (True, False):
                with self.subTest(kind=kind, jit_compile=jit_compile):
                    self._check_schedule(STATISTICS_SCHEDULE_CASES[kind](), jit_compile, x, y)

    def _check_schedule(self, optimizer, jit_compile, x, y):
        model = _model(optimizer, jit_compile)
        kernel, bias = (np.asarray(w, np.float64) for w in model.get_weights())
        reference = _sgd_norms_per_step(x, y, kernel, bias, 0.1, steps=8)
        reader = _ReadEachEpoch()
        model.fit(x, y, batch_size=16, epochs=8, verbose=0, shuffle=False, callbacks=[reader])
        for count, seen in enumerate(reader.seen, start=1):
            recorded = max(step for step in (1, 4, 7) if step <= count)
            norms, ratios = reference[recorded - 1]
            self.assertEqual(int(seen["step"]), recorded)
            self.assertAllClose(seen["gradient_norms"], norms, rtol=1e-4)
            self.assertAllClose(seen["global_norm"], np.linalg.norm(norms), rtol=1e-4)
            self.assertAllClose(seen["update_ratios"], ratios, rtol=1e-3)

    def test_schedule_statistics_moves_recording_inside_a_compiled_fit(self):
        x, y = _linear_data(np.random.default_rng(2))
        model = _model(optimizers.SGD(0.1, statistics_every=5), True)
        kernel, bias = (np.asarray(w, np.float64) for w in model.get_weights())
        reference = _sgd_norms_per_step(x, y, kernel, bias, 0.1, steps=9)
        model.fit(x, y, batch_size=16, epochs=3, verbose=0)  # records step 1 only
        self.assertEqual(int(model.optimizer.gradient_statistics()["step"]), 1)
        # (iterations - 1) % 2 == 0: the steps that end at an even count.
        model.optimizer.schedule_statistics(2, offset=1)
        reader = _ReadEachEpoch()
        model.fit(x, y, batch_size=16, epochs=6, verbose=0, callbacks=[reader])
        self.assertEqual([int(seen["step"]) for seen in reader.seen], [4, 4, 6, 6, 8, 8])
        self.assertAllClose(reader.seen[-1]["gradient_norms"], reference[7][0], rtol=1e-4)
        model.optimizer.schedule_statistics()  # back to every 5th from step 1: step 11
        model.fit(x, y, batch_size=16, epochs=3, verbose=0)
        self.assertEqual(int(model.optimizer.gradient_statistics()["step"]), 11)

    def test_reloaded_optimizer_records_on_its_own_schedule(self):
        # Saved while rescheduled (as by a callback during fit): the reloaded optimizer
        # keeps the recorded statistics but records every statistics_every steps again.
        x, y = _linear_data(np.random.default_rng(3))
        model = _model(optimizers.SGD(0.1, statistics_every=4), True)
        model.optimizer.schedule_statistics(3, offset=2)
        model.fit(x, y, batch_size=16, epochs=3, verbose=0)  # records step 3 only
        self.assertEqual(int(model.optimizer.gradient_statistics()["step"]), 3)
        revived = reload_model(model, self.get_temp_dir())
        self.assertEqual(int(revived.optimizer.gradient_statistics()["step"]), 3)
        self.assertEqual((int(revived.optimizer._statistics_period),
                          int(revived.optimizer._statistics_offset)), (4, 0))
        revived.fit(x, y, batch_size=16, epochs=2, verbose=0)  # steps 4, 5: 5 is 1 + 4
        self.assertEqual(int(revived.optimizer.gradient_statistics()["step"]), 5)

    def test_statistics_every_round_trips(self):
        optimizer = optimizers.Adam(statistics_every=7)
        revived = self.run_serialization_test(optimizer)
        self.assertEqual(revived.statistics_every, 7)
        wrapped = optimizers.monitored(keras.optimizers.SGD(), statistics_every=4)
        self.assertEqual(self.run_serialization_test(wrapped).statistics_every, 4)
        lookahead = optimizers.Lookahead(keras.optimizers.SGD(), statistics_every=2)
        self.assertEqual(self.run_serialization_test(lookahead).statistics_every, 2)
        self.assertEqual(optimizers.SGD().statistics_every, 20)
