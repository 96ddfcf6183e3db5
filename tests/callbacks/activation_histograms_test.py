import os

import keras
import numpy as np
from _callback_helpers import histogram_table, mlp, plugin_of, read_run, regression_data

from kerastrain.callbacks import ActivationHistograms
from kerastrain.callbacks._activations import (
    activation_counts,
    activation_statistics,
    merge_counts,
)
from kerastrain.testing import TestCase


def reference_statistics(values, kind, epsilon=0.01, near_zero=1e-6):
    """float64 numpy: mean, population std, saturation / near-zero fractions."""
    values = np.asarray(values, np.float64).reshape(-1)
    result = {"mean": values.mean(), "std": values.std()}
    if kind == "tanh":
        result["saturation"] = np.mean(np.abs(values) >= 1 - epsilon)
    elif kind == "sigmoid":
        result["saturation"] = np.mean((values <= epsilon) | (values >= 1 - epsilon))
    elif kind == "relu":
        result["near_zero"] = np.mean(np.abs(values) <= near_zero)
    return result


class PureFunctionsTest(TestCase):
    def test_batched_statistics_match_numpy(self):
        raw = self.rng.normal(scale=3.0, size=(37, 5))
        cases = {"tanh": np.tanh(raw), "sigmoid": 1 / (1 + np.exp(-raw)),
                 "relu": np.maximum(raw, 0), None: raw}
        for kind, values in cases.items():
            total = None
            for start in range(0, 37, 8):
                total = merge_counts(total, activation_counts(values[start:start + 8], kind,
                                                              0.01, 1e-6))
            actual = activation_statistics(total, kind)
            expected = reference_statistics(values, kind)
            self.assertEqual(sorted(actual), sorted(expected))
            for key in expected:
                self.assertAllClose(actual[key], expected[key], rtol=1e-10, atol=1e-12)


class ActivationHistogramsTest(TestCase):
    def model(self):
        model = keras.Sequential([
            keras.Input((4,)),
            keras.layers.Dense(6, activation="tanh", name="tanh"),
            keras.layers.Dense(5, activation="sigmoid", name="sigmoid"),
            keras.layers.Dense(4, activation="relu", name="relu"),
            keras.layers.Dense(1, name="out"),
        ], name="net")
        for layer in model.layers:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel * 4, self.rng.normal(size=bias.shape).astype("float32")])
        return model

    def test_matches_reference(self):
        model = self.model()
        probe = self.rng.normal(size=(23, 4)).astype("float32")
        log_dir = self.get_temp_dir()
        callback = ActivationHistograms(probe, log_dir, probe_batch_size=7)
        callback.set_model(model)
        callback.on_train_begin()
        callback.on_epoch_end(0, logs := {})
        callback.on_train_end()
        activations = probe.astype(np.float64)
        functions = {"tanh": np.tanh, "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
                     "relu": lambda a: np.maximum(a, 0), None: lambda a: a}
        run = read_run(os.path.join(log_dir, "train"))
        for layer, kind in zip(model.layers, ["tanh", "sigmoid", "relu", None]):
            kernel, bias = (w.astype(np.float64) for w in layer.get_weights())
            activations = functions[kind](activations @ kernel + bias)
            name = layer.path
            for key, value in reference_statistics(activations, kind).items():
                self.assertAllClose(logs[f"activation_{key}/{name}"], value, rtol=1e-5,
                                    atol=1e-7)
                self.assertAllClose(callback.statistics[name][key], value, rtol=1e-5, atol=1e-7)
            tag = f"activations/{name}"
            self.assertEqual(plugin_of(run, tag), "histograms")
            step, table = histogram_table(run, tag)
            self.assertEqual(step, 0)
            self.assertEqual(table[:, 2].sum(), activations.size)
            self.assertAllClose([table[0, 0], table[-1, 1]],
                                [activations.min(), activations.max()], rtol=1e-5)
        self.assertGreater(logs["activation_saturation/net/tanh"], 0)

    def test_histogram_subsamples_large_outputs(self):
        model = self.model()
        probe = self.rng.normal(size=(40, 4)).astype("float32")
        log_dir = self.get_temp_dir()
        callback = ActivationHistograms(probe, log_dir, layers=["tanh"], probe_batch_size=10,
                                        max_histogram_values=60)
        callback.set_model(model)
        callback.on_train_begin()
        callback.measure(3)
        callback.on_train_end()
        step, table = histogram_table(read_run(os.path.join(log_dir, "train")),
                                      "activations/net/tanh")
        # 4 batches of 10 x 6 values, at most 60 // 4 = 15 kept per batch (stride 4).
        self.assertEqual((step, table[:, 2].sum()), (3, 4 * 15))

    def test_fit_nested_model(self):
        x, y = regression_data()
        inner = mlp(name="inner")
        inputs = keras.Input((4,))
        model = keras.Model(inputs, keras.layers.Activation("sigmoid", name="squash")(
            inner(inputs)))
        model.compile(optimizer="sgd", loss="mse")
        callback = ActivationHistograms(x[:16], freq=2)
        history = model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
        self.assertEqual(sorted(key for key in history.history if key.startswith("activation")),
                         ["activation_mean/inner/hidden", "activation_mean/inner/out",
                          "activation_mean/squash", "activation_near_zero/inner/hidden",
                          "activation_saturation/squash", "activation_std/inner/hidden",
                          "activation_std/inner/out", "activation_std/squash"])
        self.assertEqual(len(history.history["activation_mean/squash"]), 1)

    def test_unknown_layer_names(self):
        x, y = regression_data()
        model = mlp()
        model.compile(optimizer="sgd", loss="mse")
        with self.assertRaisesRegex(
                ValueError, r"Argument `layers` must name layers of the model\. Received: "
                r"layers=\['nope'\] Known layers: \['sequential(_\d+)?/hidden', "):
            model.fit(x, y, epochs=1, verbose=0,
                      callbacks=[ActivationHistograms(x, layers=["hidden", "nope"])])

    def test_model_without_watched_layers(self):
        x, y = regression_data()
        inputs = keras.Input((4,))
        model = keras.Model(inputs, keras.layers.Flatten()(inputs))
        with self.assertRaisesRegex(
                ValueError, r"Argument `model` must have a layer with an activation or weights "
                r"for ActivationHistograms"):
            callback = ActivationHistograms(x)
            callback.set_model(model)
            callback.on_train_begin()

    def test_bad_arguments(self):
        x = np.zeros((4, 4), "float32")
        cases = [
            (dict(layers="hidden"), TypeError, r"Argument `layers` must be a list of layer names"),
            (dict(saturation_threshold=0.5), ValueError,
             r"Argument `saturation_threshold` must be in \(0, 0\.5\)"),
            (dict(near_zero_threshold=-1.0), ValueError,
             r"Argument `near_zero_threshold` must be >= 0"),
            (dict(max_histogram_values=0), ValueError,
             r"Argument `max_histogram_values` must be an integer >= 1"),
            (dict(freq=1.0), TypeError, r"Argument `freq` must be an integer"),
        ]
        for kwargs, error, message in cases:
            with self.subTest(kwargs=kwargs), self.assertRaisesRegex(error, message):
                ActivationHistograms(x, **kwargs)

    def test_serialization(self):
        probe = {"a": np.arange(6, dtype="float32").reshape(3, 2)}
        callback = ActivationHistograms(probe, "logs", freq=3, layers=["dense"],
                                        saturation_threshold=0.05, near_zero_threshold=0.0,
                                        probe_batch_size=2, max_histogram_values=10)
        revived = self.run_serialization_test(callback)
        np.testing.assert_array_equal(revived.probe.x["a"], probe["a"])
