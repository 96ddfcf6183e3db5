"""One table over every kerastrain layer: shapes, one fit step, `.keras` round trip."""

import json

import keras
import numpy as np

from kerastrain import layers
from kerastrain.testing import TestCase, reload_model

# name -> (factory, input shape without batch, expected output shape without batch)
LAYERS = {
    "MinMaxScaling": (lambda: layers.MinMaxScaling(feature_range=(-1, 1)), (6,), (6,)),
    "DecimalScaling": (lambda: layers.DecimalScaling(), (6,), (6,)),
    "MeanSubtraction": (lambda: layers.MeanSubtraction(per_channel=True), (4, 4, 3), (4, 4, 3)),
    "PCA": (lambda: layers.PCA(3, whiten=True), (6,), (3,)),
    "ZCAWhitening": (lambda: layers.ZCAWhitening(epsilon=1e-3), (6,), (6,)),
    "WeightNormalization": (
        lambda: layers.WeightNormalization(keras.layers.Conv2D(4, 3, padding="same")),
        (4, 4, 3), (4, 4, 4)),
    "LocalResponseNormalization": (lambda: layers.LocalResponseNormalization(1), (4, 4, 3),
                                   (4, 4, 3)),
    "Maxout": (lambda: layers.Maxout(2), (6,), (2,)),
    "MCDropout": (lambda: layers.MCDropout(0.25, seed=3), (6,), (6,)),
}
STOCHASTIC = {"MCDropout"}


def _as_json(config):
    """Configs as written to a .keras file (tuples become lists)."""
    return json.loads(json.dumps(config))


def test_table_covers_every_public_layer():
    public = {name for name in layers.__all__ if isinstance(getattr(layers, name), type)}
    assert public == set(LAYERS)


class SharedLayerTest(TestCase):
    def _model(self, name):
        factory, input_shape, output_shape = LAYERS[name]
        x = (5 + 3 * self.rng.normal(size=(16, *input_shape))).astype("float32")
        layer = factory()
        if hasattr(layer, "adapt"):
            layer.adapt(x)
        inputs = keras.Input(input_shape)
        hidden = layer(inputs)
        outputs = keras.layers.Dense(1)(keras.layers.Flatten()(hidden))
        return layer, keras.Model(inputs, outputs), x, output_shape

    def _check(self, name):
        layer, model, x, output_shape = self._model(name)
        self.assertEqual(tuple(model.layers[1].output.shape), (None, *output_shape))
        self.assertEqual(tuple(layer.compute_output_shape((None, *x.shape[1:]))),
                         (None, *output_shape))
        self.assertEqual(tuple(layer(x).shape), (16, *output_shape))
        # One training step in model.fit.
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        head = model.layers[-1]
        before = keras.ops.convert_to_numpy(head.kernel).copy()
        history = model.fit(x, np.ones((16, 1)), batch_size=16, epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        self.assertFalse(np.allclose(keras.ops.convert_to_numpy(head.kernel), before))
        # .keras round trip without custom_objects.
        revived = reload_model(model, self.get_temp_dir())
        revived_layer = revived.layers[1]
        self.assertIs(type(revived_layer), type(layer))
        self.assertEqual(_as_json(revived_layer.get_config()), _as_json(layer.get_config()))
        for saved, loaded in zip(model.weights, revived.weights):
            self.assertAllClose(loaded, saved, rtol=0, atol=0)
        if name not in STOCHASTIC:
            self.assertAllClose(revived.predict(x, verbose=0), model.predict(x, verbose=0),
                                rtol=1e-6, atol=1e-6)
        revived_config = type(layer).from_config(layer.get_config()).get_config()
        self.assertEqual(revived_config, layer.get_config())


def _make_test(name):
    def test(self):
        self._check(name)
    test.__name__ = f"test_{name}"
    return test


for _name in LAYERS:
    setattr(SharedLayerTest, f"test_{_name}", _make_test(_name))
