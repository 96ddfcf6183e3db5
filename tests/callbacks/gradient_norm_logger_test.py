import math
import os

import keras
import numpy as np
import pytest
import torch
from _callback_helpers import mlp, mlp_gradients, read_run, regression_data, scalar_series

import kerastrain
from kerastrain.callbacks import GradientNormLogger
from kerastrain.callbacks._gradient_norms import gradient_alarms, layer_norms
from kerastrain.optimizers import monitored
from kerastrain.testing import TestCase


def sgd_global_norms(weights, x, y, learning_rate, batch_size, steps):
    """‖g‖₂ at each of ``steps`` plain-SGD steps on consecutive batches (float64 numpy)."""
    weights = [np.asarray(w, np.float64) for w in weights]
    norms = []
    for step in range(steps):
        start = (step * batch_size) % len(x)
        grads = mlp_gradients(weights, x[start:start + batch_size], y[start:start + batch_size])
        norms.append(np.sqrt(sum(np.sum(g ** 2) for g in grads)))
        weights = [w - learning_rate * g for w, g in zip(weights, grads)]
    return norms


def torch_total_norm(weights, x, y):
    """PyTorch's global gradient norm (`clip_grad_norm_` returns it) for the same MLP."""
    params = [torch.tensor(np.asarray(w, np.float64), requires_grad=True) for w in weights]
    w1, b1, w2, b2 = params
    x, y = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    loss = torch.mean((torch.relu(x @ w1 + b1) @ w2 + b2 - y) ** 2)
    loss.backward()
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm=math.inf))


class PureFunctionsTest(TestCase):
    def test_layer_norms_group_variables_by_layer(self):
        paths = ["outer/inner/dense/kernel", "outer/inner/dense/bias", "outer/out/kernel"]
        norms = layer_norms(paths, [3.0, 4.0, 2.0])
        self.assertEqual(list(norms), ["outer/inner/dense", "outer/out"])
        self.assertAllClose([norms["outer/inner/dense"], norms["outer/out"]], [5.0, 2.0])

    def test_alarms(self):
        counts, alarms = gradient_alarms({"a": 1e-9, "b": 1.0}, {}, 1e-7, 1e3, patience=2)
        self.assertEqual((counts, alarms), ({"a": 1, "b": 0}, []))
        counts, alarms = gradient_alarms({"a": 1e-9, "b": 1.0}, counts, 1e-7, 1e3, patience=2)
        self.assertEqual(alarms, [("vanishing", "a", 1e-9)])
        counts, alarms = gradient_alarms({"a": 1.0, "b": math.inf}, counts, 1e-7, 1e3, 2)
        self.assertEqual(counts, {"a": 0, "b": 0})
        self.assertEqual(alarms, [("exploding", "b", math.inf)])
        _, alarms = gradient_alarms({"a": math.nan, "b": 1e4}, {}, 1e-7, 1e3, 2)
        self.assertEqual([kind for kind, _, _ in alarms], ["exploding", "exploding"])


class GradientNormLoggerTest(TestCase):
    def compiled(self, optimizer=None, **compile_kwargs):
        model = mlp()
        model.compile(optimizer=optimizer or monitored(keras.optimizers.SGD(0.1)), loss="mse",
                      **compile_kwargs)
        return model

    def test_matches_reference(self):
        # One full-batch step per epoch: the recorded norms are those of the gradient
        # at the weights before that step, checked against float64 numpy and PyTorch.
        x, y = regression_data(samples=16)
        model = self.compiled()
        log_dir = self.get_temp_dir()
        logger = GradientNormLogger(log_dir)
        expected_global, expected_layers = [], []
        for _ in range(3):
            weights = model.get_weights()
            grads = mlp_gradients(weights, x, y)
            expected_global.append(np.sqrt(sum(np.sum(g ** 2) for g in grads)))
            self.assertAllClose(torch_total_norm(weights, x, y), expected_global[-1], rtol=1e-12)
            expected_layers.append([np.sqrt(np.sum(grads[0] ** 2) + np.sum(grads[1] ** 2)),
                                    np.sqrt(np.sum(grads[2] ** 2) + np.sum(grads[3] ** 2))])
            history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[logger])
        self.assertIsInstance(model.optimizer, kerastrain.optimizers.Monitored)  # as compiled
        prefix = f"gradient_norm/{model.name}"
        self.assertAllClose(history.history["gradient_norm/global"], expected_global[-1:],
                            rtol=1e-5)
        self.assertAllClose(
            [history.history[f"{prefix}/hidden"][0], history.history[f"{prefix}/out"][0]],
            expected_layers[-1], rtol=1e-5)
        run = read_run(os.path.join(log_dir, "train"))
        series = scalar_series(run, "gradient_norm/global")
        self.assertEqual([step for step, _ in series], [0, 0, 0])
        self.assertAllClose([value for _, value in series], expected_global, rtol=1e-5)

    def test_monitored_keeps_updates_and_optimizer_state(self):
        x, y = regression_data()
        optimizer = monitored(keras.optimizers.Adam(0.01))
        watched = self.compiled(optimizer, run_eagerly=False)
        plain = self.compiled(keras.optimizers.Adam(0.01))
        plain.set_weights(watched.get_weights())
        for model in (watched, plain):
            model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        watched.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False,
                    callbacks=[GradientNormLogger()])
        plain.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
        self.assertIs(watched.optimizer, optimizer)
        self.assertEqual(int(watched.optimizer.iterations), 12)
        self.assertAllClose(watched.get_weights(), plain.get_weights(), rtol=1e-5, atol=1e-6)
        # The monitored model saves and loads without custom_objects.
        revived = self.run_saved_model_test(watched, x)
        self.assertIsInstance(revived.optimizer, kerastrain.optimizers.Monitored)
        self.assertEqual(int(revived.optimizer.iterations), 12)

    def test_plain_optimizer_is_not_replaced_and_the_error_says_how(self):
        x, y = regression_data()
        optimizer = keras.optimizers.Adam()
        model = self.compiled(optimizer)
        weights = model.get_weights()
        message = (
            r"^Argument `optimizer` must record gradient statistics for GradientNormLogger\. "
            r"Received: optimizer='adam(_\d+)?' of type Adam\. Compile with a kerastrain "
            r"optimizer, or wrap yours: model\.compile\(optimizer=kerastrain\.optimizers\."
            r"monitored\(keras\.optimizers\.Adam\(\)\), \.\.\.\)\. \(kerastrain does not "
            r"replace the compiled optimizer for you\.\)$")
        with self.assertRaisesRegex(ValueError, message):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[GradientNormLogger()])
        with self.assertWarnsRegex(DeprecationWarning, r"wrap_optimizer=True\) is deprecated"):
            logger = GradientNormLogger(wrap_optimizer=True)
        with self.assertRaisesRegex(ValueError, message):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[logger])
        self.assertIs(model.optimizer, optimizer)
        self.assertIs(model._compile_config.config["optimizer"], optimizer)
        self.assertAllClose(model.get_weights(), weights, rtol=0, atol=0)

    def test_every_n_steps_with_steps_per_execution(self):
        # 4 steps per epoch, 2 epochs, executions of 2 steps: the optimizer records the
        # gradients of steps 3 and 6 (multiples of 3), logged at those steps by the
        # executions ending at steps 4 and 6 (documented behaviour).
        x, y = regression_data()
        model = self.compiled(steps_per_execution=2)
        log_dir = self.get_temp_dir()
        logger = GradientNormLogger(log_dir, update_freq=3)
        if keras.config.backend() == "torch":
            # Keras allows steps_per_execution > 1 only on TF and JAX (documented).
            with self.assertRaisesRegex(ValueError, r"`steps_per_execution` must be 1"):
                model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[logger])
            return
        expected = sgd_global_norms(model.get_weights(), x, y, 0.1, batch_size=8, steps=8)
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False,
                            callbacks=[logger])
        series = scalar_series(read_run(os.path.join(log_dir, "train")), "gradient_norm/global")
        self.assertEqual([step for step, _ in series], [3, 6])
        self.assertAllClose([value for _, value in series], [expected[2], expected[5]],
                            rtol=1e-5)
        self.assertEqual(len(history.history["gradient_norm/global"]), 2)

    def test_epoch_values_are_the_last_step_of_each_epoch(self):
        # The optimizer records every 20th step by itself; during fit the logger moves
        # recording onto the last step of each epoch (4 steps per epoch here), for the
        # kerastrain optimizer and for a monitored Keras one, also when training resumes
        # mid-way (iterations not a multiple of the epoch length), and gives the
        # optimizer its own schedule back afterwards.
        x, y = regression_data()
        for optimizer in (kerastrain.optimizers.SGD(0.1), monitored(keras.optimizers.SGD(0.1))):
            model = self.compiled(optimizer)
            model.fit(x[:24], y[:24], batch_size=8, epochs=1, verbose=0, shuffle=False)
            weights = model.get_weights()
            expected = sgd_global_norms(weights, x, y, 0.1, batch_size=8, steps=12)
            logger = GradientNormLogger()
            history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False,
                                callbacks=[logger])
            self.assertAllClose(history.history["gradient_norm/global"],
                                [expected[3], expected[7], expected[11]], rtol=1e-5)
            statistics = model.optimizer.gradient_statistics()
            self.assertEqual(int(statistics["step"]), 15)
            self.assertEqual(model.optimizer.statistics_every, 20)
            self.assertEqual(int(model.optimizer._statistics_period), 20)
            self.assertEqual(int(model.optimizer._statistics_offset), 0)

    def test_epoch_values_with_unknown_epoch_length(self):
        # A dataset of unknown length (tf.data after a filter; Keras reads it on every
        # backend): every step records, the logged values are still the last step's.
        import tensorflow as tf

        x, y = regression_data()
        model = self.compiled(kerastrain.optimizers.SGD(0.1))
        expected = sgd_global_norms(model.get_weights(), x, y, 0.1, batch_size=8, steps=12)
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda *_: True).batch(8)
        self.assertEqual(int(dataset.cardinality()), int(tf.data.UNKNOWN_CARDINALITY))
        logger = GradientNormLogger()
        history = model.fit(dataset, epochs=3, verbose=0, callbacks=[logger])
        self.assertAllClose(history.history["gradient_norm/global"],
                            [expected[3], expected[7], expected[11]], rtol=1e-5)
        self.assertEqual(int(model.optimizer._statistics_period), 20)  # restored after fit

    def test_mixed_precision_logs_unscaled_gradients(self):
        # Under mixed_float16 Keras wraps the optimizer in a LossScaleOptimizer, whose
        # apply() gets gradients multiplied by the loss scale (32768 at first). The
        # statistics must come from the inner optimizer (unscaled gradients): for a
        # kerastrain optimizer as it is, for a Keras one inside `monitored`.
        x, y = regression_data(samples=16)
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("mixed_float16")
        try:
            for optimizer in (kerastrain.optimizers.SGD(0.1),
                              monitored(keras.optimizers.SGD(0.1))):
                model = mlp()
                model.compile(optimizer=optimizer, loss="mse")
                self.assertIsInstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
                weights = model.get_weights()
                history = model.fit(x, y, batch_size=16, epochs=1, verbose=0,
                                    callbacks=[GradientNormLogger()])
                self.assertIsInstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
                grads = mlp_gradients(weights, x, y)
                expected = np.sqrt(sum(np.sum(g ** 2) for g in grads))
                # float16 forward and backward: agreement to float16 precision.
                self.assertAllClose(history.history["gradient_norm/global"], [expected],
                                    rtol=2e-2)
        finally:
            keras.config.set_dtype_policy(previous)

    def test_every_step_without_jit(self):
        x, y = regression_data()
        model = self.compiled(run_eagerly=True)
        logger = GradientNormLogger(update_freq=1)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[logger])
        self.assertEqual(len(logger.records), 4)
        self.assertTrue(all(record["gradient_norm/global"] > 0 for record in logger.records))

    def test_warns_once_on_vanishing_and_exploding(self):
        x, y = regression_data()
        model = keras.Sequential([
            keras.Input((4,)), keras.layers.Dense(3, name="hidden"),
            keras.layers.Dense(1, kernel_initializer="zeros", name="out"),
        ])
        model.compile(optimizer=monitored(keras.optimizers.SGD(0.0)), loss="mse",
                      run_eagerly=True)
        logger = GradientNormLogger(patience=2, exploding_threshold=1e-3)
        with pytest.warns(UserWarning) as record:
            model.fit(x, y, batch_size=32, epochs=3, verbose=0, callbacks=[logger])
        messages = [str(warning.message) for warning in record
                    if "GradientNormLogger" in str(warning.message)]
        # With a zero output kernel (and learning rate 0) no gradient reaches `hidden`;
        # `out` gets the full gradient, above the (tiny) exploding threshold.
        self.assertEqual(len(messages), 2)
        self.assertRegex(messages[0], r"GradientNormLogger: exploding gradients in layer "
                         r"`sequential(_\d+)?/out` \(gradient norm [0-9.e+-]+ at epoch 0\)\. "
                         r"Lower the learning rate, clip gradients")
        self.assertRegex(messages[1], r"GradientNormLogger: vanishing gradients in layer "
                         r"`sequential(_\d+)?/hidden` \(gradient norm 0 at epoch 1\)\. Use "
                         r"ReLU-family activations with He initialization")

    def test_serialization(self):
        logger = GradientNormLogger("logs", update_freq=10, vanishing_threshold=1e-6,
                                    exploding_threshold=100, patience=5, wrap_optimizer=False)
        self.run_serialization_test(logger)

    def test_bad_arguments(self):
        cases = [
            (dict(update_freq="batch"), ValueError,
             r"Argument `update_freq` must be one of 'epoch'\. Received: update_freq='batch' "
             r"Use 'epoch' or a positive integer number of steps\."),
            (dict(update_freq=0), ValueError, r"Argument `update_freq` must be an integer >= 1"),
            (dict(log_dir=3), TypeError,
             r"Argument `log_dir` must be a path \(str or os\.PathLike\) or None"),
            (dict(exploding_threshold=1e-8), ValueError,
             r"Argument `exploding_threshold` must be > vanishing_threshold=1e-07\. "
             r"Received: exploding_threshold=1e-08"),
            (dict(vanishing_threshold=-1), ValueError,
             r"Argument `vanishing_threshold` must be >= 0"),
            (dict(patience=0), ValueError, r"Argument `patience` must be an integer >= 1"),
            (dict(wrap_optimizer="yes"), TypeError, r"Argument `wrap_optimizer` must be True"),
        ]
        for kwargs, error, message in cases:
            with self.subTest(kwargs=kwargs), self.assertRaisesRegex(error, message):
                GradientNormLogger(**kwargs)

    def test_unwritable_log_dir_fails_before_training(self):
        blocker = os.path.join(self.get_temp_dir(), "file")
        with open(blocker, "w") as handle:
            handle.write("not a directory")
        x, y = regression_data()
        model = self.compiled()
        weights = model.get_weights()
        with self.assertRaisesRegex(ValueError, r"Argument `log_dir` must be a writable "
                                    r"directory\. Received: log_dir='.*file/logs'"):
            model.fit(x, y, epochs=1, verbose=0,
                      callbacks=[GradientNormLogger(os.path.join(blocker, "logs"))])
        self.assertAllClose(model.get_weights(), weights, rtol=0, atol=0)
