import gc
import weakref

import keras
import numpy as np
from _callback_helpers import mlp, regression_data

import kerastrain
from kerastrain.callbacks import GradientNormLogger, _probe
from kerastrain.callbacks._probe import Probe, record_layer_outputs
from kerastrain.testing import TestCase


class Doubler(keras.Model):
    """A subclassed model (no `inputs`): the probe is checked by calling it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(2, activation="relu")

    def call(self, inputs):
        return self.dense(inputs[:, :3] * 2)


class ProbeTest(TestCase):
    def test_batches_cover_every_sample_once(self):
        x, y = regression_data(samples=10)
        probe = Probe((x, y, np.arange(10.0)), batch_size=4)
        batches = list(probe.batches(with_targets=True))
        self.assertEqual([len(b[0]) for b in batches], [4, 4, 2])
        np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
        np.testing.assert_array_equal(np.concatenate([b[2] for b in batches]), np.arange(10.0))

    def test_structures_round_trip_through_config(self):
        x = {"a": np.ones((3, 2), "float16"), "b": np.zeros((3, 1), "int32")}
        probe = Probe((x, [np.ones((3, 1))]))
        data = Probe.data_from_config(probe.get_config())
        self.assertEqual(data[0]["a"].dtype, np.float16)
        self.assertEqual(data[0]["b"].dtype, np.int32)
        self.assertIsInstance(data[1], list)
        self.assertIsNone(data[2])

    def test_no_arrays(self):
        with self.assertRaisesRegex(ValueError, r"Argument `probe_data` must contain at least "
                                    r"one array\. Received: probe_data=\[\]"):
            Probe([])

    def test_input_count_mismatch(self):
        model = mlp()
        x, _ = regression_data()
        with self.assertRaisesRegex(ValueError, r"Argument `probe_data` must give the model its "
                                    r"1 input\(s\)\. Received: probe_data='2 array\(s\)'"):
            Probe([x, x]).check_model(model)

    def test_subclassed_model_is_called_on_one_sample(self):
        model = Doubler()
        Probe(np.ones((5, 4), "float32")).check_model(model)
        with self.assertRaisesRegex(ValueError, r"Argument `probe_data` must be accepted by the "
                                    r"model\. Received: probe_data='x of shapes \[\(5, 2\)\]' "
                                    r"Calling the model on one sample failed with: "):
            Probe(np.ones((5, 2), "float32")).check_model(model)  # built for 3 features


class SharedRunTest(TestCase):
    """The last forward pass is kept on each `Probe` (no module-level cache)."""

    def test_each_probe_keeps_its_own_last_run(self):
        model = mlp()
        model.compile(optimizer="sgd", loss="mse")
        layers = [model.get_layer("hidden")]
        x, _ = regression_data(samples=6)
        first, second = Probe(x, batch_size=4), Probe(x, batch_size=4)
        seen = []

        def reduce(layer, output):
            seen.append(len(output))

        passes = []
        for probe, reader in ((first, "a"), (second, "a"), (first, "b"), (second, "b")):
            run = probe.last_run
            record_layer_outputs(model, layers, probe, reduce, reader=reader)
            passes.append(probe.last_run is not run)
        # "b" reuses each probe's own pass, although the other probe ran in between.
        self.assertEqual(passes, [True, True, False, False])
        self.assertEqual(seen, [4, 2] * 4)
        self.assertEqual(first.last_run.readers, {"a", "b"})
        self.assertIsNot(first.last_run, second.last_run)
        self.assertFalse(hasattr(_probe, "_CACHE"))

    def test_last_run_does_not_keep_the_model_alive(self):
        model = mlp()
        model.compile(optimizer="sgd", loss="mse")
        probe = Probe(regression_data(samples=3)[0])
        record_layer_outputs(model, [model.get_layer("hidden")], probe, lambda *_: None)
        reference = weakref.ref(model)
        del model
        gc.collect()
        self.assertIsNone(reference())
        self.assertIsNone(probe.last_run.model())


class StatisticsErrorsTest(TestCase):
    def test_uncompiled_model(self):
        logger = GradientNormLogger()
        logger.set_model(mlp())
        with self.assertRaisesRegex(ValueError, r"GradientNormLogger needs a compiled model\. "
                                    r"Received: model\.optimizer=None\."):
            logger.on_train_begin()

    def test_optimizer_recording_nothing(self):
        model = mlp()
        model.compile(optimizer=kerastrain.optimizers.SGD(0.1, record_statistics=False),
                      loss="mse")
        logger = GradientNormLogger()
        logger.set_model(model)
        with self.assertRaisesRegex(
                ValueError, r"Argument `optimizer` must record gradient statistics for "
                r"GradientNormLogger\. Received: optimizer='.*' with record_statistics=False\. "
                r"Create it with record_statistics=True\."):
            logger.on_train_begin()
