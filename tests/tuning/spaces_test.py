"""The chapter's MLP search space: sampled hyperparameters, models, mappings, errors."""

import keras
import keras_tuner
import numpy as np
import pytest

from kerastrain.testing import TestCase
from kerastrain.tuning import MLPHyperModel, _spaces


def fixed_hp(**values):
    hp = keras_tuner.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return hp


class MLPHyperModelTest(TestCase):
    def test_config_round_trip(self):
        hypermodel = MLPHyperModel(input_shape=(6,), num_classes=3, layers=[1, 2], units=[4, 8],
                                   learning_rate_step=10.0, steps_per_execution=2)
        revived = self.run_serialization_test(hypermodel)
        self.assertEqual(revived.get_config()["learning_rate_step"], 10.0)

    def test_every_activation_builds_a_model_that_reloads_without_custom_objects(self):
        x = self.rng.normal(size=(5, 6)).astype("float32")
        hypermodel = MLPHyperModel(input_shape=(6,), num_classes=3, layers=[2, 2], units=[4])
        for activation in _spaces.ACTIVATIONS:
            hp = fixed_hp(activation=activation, initializer="he_normal", l2=1e-4, dropout=0.2,
                          batch_norm=True, optimizer="nesterov", learning_rate=0.01,
                          schedule="exponential")
            model = hypermodel.build(hp)
            self.assertEqual(model.output_shape, (None, 3))
            self.run_saved_model_test(model, x)

    def test_regression_head(self):
        hypermodel = MLPHyperModel(input_shape=(6,), num_classes=None, layers=[1, 1], units=[4])
        model = hypermodel.build(keras_tuner.HyperParameters())
        self.assertEqual(model.output_shape, (None, 1))
        self.assertEqual(model.loss, "mean_squared_error")

    def test_depth_and_units_follow_the_hyperparameters(self):
        hypermodel = MLPHyperModel(input_shape=(6,), num_classes=3, layers=[1, 3],
                                   units=[4, 8], batch_norm=[False], dropout=[0.0, 0.0])
        model = hypermodel.build(fixed_hp(layers=3, units_0=8, units_1=4, units_2=8,
                                          activation="relu"))
        dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        self.assertEqual([layer.units for layer in dense], [8, 4, 8, 3])

    def test_maxout_matches_the_formula(self):
        """h_i = max_j (x W_ij + b_ij) (Goodfellow et al., 2013), pieces = 2."""
        inputs = keras.Input(shape=(5,))
        outputs = _spaces.apply_activation(inputs, "maxout", 3, "glorot_uniform", None, 0)
        model = keras.Model(inputs, outputs)
        x = self.rng.normal(size=(4, 5))
        kernel, bias = (keras.ops.convert_to_numpy(w).astype(np.float64)
                        for w in model.get_layer("dense_0").weights)
        affine = (x @ kernel + bias).reshape(4, _spaces.MAXOUT_PIECES, 3)
        self.assertAllClose(model(x.astype("float32")), affine.max(axis=1), rtol=1e-5)

    def test_learning_rate_is_sampled_log_uniformly(self):
        """log10(lr) is uniform on [log10 min, log10 max]: each decade holds ~1/3 of samples."""
        hypermodel = MLPHyperModel(input_shape=(6,), num_classes=3, learning_rate=[1e-4, 1e-1])
        hp = keras_tuner.HyperParameters()
        hypermodel.build(hp)
        space = {p.name: p for p in hp.space}
        self.assertEqual(space["learning_rate"].sampling, "log")
        rng = np.random.default_rng(0)
        samples = np.array([space["learning_rate"].prob_to_value(p)
                            for p in rng.uniform(size=3000)])
        counts = np.histogram(np.log10(samples), bins=[-4, -3, -2, -1])[0] / len(samples)
        self.assertAllClose(counts, [1 / 3] * 3, atol=0.04)
        self.assertEqual(space["l2"].sampling, "log")

    def test_fixed_ranges_are_not_searched(self):
        hypermodel = MLPHyperModel(input_shape=(6,), num_classes=3, layers=[2, 2], units=[8],
                                   activations=["tanh"], learning_rate=[0.01, 0.01], l2=[0, 0],
                                   dropout=[0.1, 0.1], batch_norm=[True], batch_sizes=[16],
                                   optimizers=["adam"], schedules=["constant"],
                                   initializers=["orthogonal"])
        hp = keras_tuner.HyperParameters()
        hypermodel.build(hp)
        self.assertEqual(hp.space, [])

    def test_learning_rate_step_gives_a_log_grid(self):
        hypermodel = MLPHyperModel(input_shape=(6,), num_classes=3, learning_rate=[1e-3, 1e-1],
                                   learning_rate_step=10)
        hp = keras_tuner.HyperParameters()
        hypermodel.build(hp)
        rate = {p.name: p for p in hp.space}["learning_rate"]
        self.assertAllClose(sorted(rate.values), [1e-3, 1e-2, 1e-1], rtol=1e-9)

    def test_fit_uses_the_sampled_batch_size(self):
        hypermodel = MLPHyperModel(input_shape=(6,), num_classes=3, layers=[1, 1], units=[4],
                                   batch_sizes=[7])
        hp = keras_tuner.HyperParameters()
        model = hypermodel.build(hp)
        x = self.rng.normal(size=(21, 6)).astype("float32")
        history = hypermodel.fit(hp, model, x, np.arange(21) % 3, epochs=1, verbose=0)
        self.assertEqual(history.params["steps"], 3)


class MappingsTest(TestCase):
    def test_schedules_match_their_formulas(self):
        """exp: a0 e^(-0.1 t/d); inverse time: a0 / (1 + 0.5 t/d); step: a0 0.5^floor(t/d)."""
        a0, d = 0.1, 10
        steps = np.arange(0, 50, 7, dtype=np.float64)
        references = {
            "exponential": a0 * np.exp(-0.1 * steps / d),
            "inverse_time": a0 / (1 + 0.5 * steps / d),
            "step": a0 * 0.5 ** np.floor(steps / d),
            "cosine": a0 * 0.5 * (1 + np.cos(np.pi * np.minimum(steps, 20 * d) / (20 * d))),
        }
        for name, reference in references.items():
            schedule = _spaces.make_schedule(name, a0, d)
            values = [float(schedule(step)) for step in steps]
            self.assertAllClose(values, reference, rtol=1e-5, msg=name)
        self.assertEqual(_spaces.make_schedule("constant", a0, d), a0)

    def test_optimizers_are_kerastrain_presets_with_keras_argument_names(self):
        import kerastrain.optimizers

        expected = {"sgd": (0.0, False), "momentum": (0.9, False), "nesterov": (0.9, True)}
        for name, (momentum, nesterov) in expected.items():
            config = _spaces.make_optimizer(name, 0.01).get_config()
            self.assertEqual((config["momentum"], config["nesterov"]), (momentum, nesterov))
        for name in _spaces.OPTIMIZERS:
            optimizer = _spaces.make_optimizer(name, 0.02)
            self.assertEqual(type(optimizer).__module__.split(".")[0], "kerastrain")
            self.assertIn(type(optimizer).__name__, kerastrain.optimizers.__all__)
            self.assertAlmostEqual(optimizer.get_config()["learning_rate"], 0.02, places=6)

    def test_gaussian_initializer_is_the_chapters_n_0_001(self):
        initializer = _spaces.make_initializer("gaussian", seed=1)
        values = keras.ops.convert_to_numpy(initializer((200, 200)))
        self.assertAllClose([values.mean(), values.std()], [0.0, 0.01], atol=5e-4)
        for name in _spaces.INITIALIZERS:
            self.assertIsNotNone(_spaces.make_initializer(name, seed=1))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"activations": []}, ValueError,
     r"Argument `activations` must be a non-empty list of choices. Received: activations=\[\]"),
    ({"activations": "relu"}, TypeError, r"Argument `activations` must be a list of choices"),
    ({"activations": ["swish"]}, ValueError, r"Argument `activations` must be one of 'relu'"),
    ({"optimizers": ["lbfgs"]}, ValueError, r"Argument `optimizers` must be one of 'sgd'"),
    ({"learning_rate": [0.0, 0.1]}, ValueError,
     r"Argument `learning_rate` must have min > 0. .* It is sampled on a log scale."),
    ({"learning_rate": [0.1, 0.01]}, ValueError, r"Argument `learning_rate` must have min <= max"),
    ({"learning_rate": [0.1]}, ValueError,
     r"Argument `learning_rate` must be a \[min, max\] list of two numbers"),
    ({"learning_rate_step": 1.0}, ValueError,
     r"Argument `learning_rate_step` must be > 1 \(a multiplicative step\) or None"),
    ({"l2": [0.0, 0.01]}, ValueError, r"Argument `l2` must be \[0, 0\] \(off\) or have min > 0"),
    ({"dropout": [0.0, 1.0]}, ValueError, r"Argument `dropout` must be in \[0, 0.99\]"),
    ({"layers": [1.5, 2]}, TypeError, r"Argument `layers` must be an integer"),
    ({"units": [0]}, ValueError, r"Argument `units` must be an integer >= 1"),
    ({"batch_norm": ["yes"]}, TypeError, r"Argument `batch_norm` must be a list of booleans"),
    ({"batch_sizes": []}, ValueError, r"Argument `batch_sizes` must be a non-empty list"),
    ({"num_classes": 1}, ValueError, r"Argument `num_classes` must be an integer >= 2"),
    ({"decay_steps": 0}, ValueError, r"Argument `decay_steps` must be an integer >= 1"),
    ({"steps_per_execution": 0}, ValueError,
     r"Argument `steps_per_execution` must be an integer >= 1"),
])
def test_bad_arguments(kwargs, error, message):
    arguments = {"input_shape": (6,), "num_classes": 3, **kwargs}
    with pytest.raises(error, match=message):
        MLPHyperModel(**arguments)


def test_bad_mapping_names_and_build_fn():
    with pytest.raises(ValueError, match=r"Argument `schedule` must be one of 'constant'"):
        _spaces.make_schedule("linear", 0.1, 10)
    with pytest.raises(ValueError, match=r"Argument `optimizer` must be one of 'sgd'"):
        _spaces.make_optimizer("lbfgs", 0.1)
    with pytest.raises(ValueError, match=r"Argument `initializer` must be one of"):
        _spaces.make_initializer("zeros")
    with pytest.raises(TypeError, match=r"Argument `build_fn` must be a callable build\(hp\)"):
        _spaces.hypermodel_from_function(3)
    with pytest.raises(TypeError, match=r"Argument `input_shape` must be a shape \(tuple of"):
        MLPHyperModel(input_shape="64", num_classes=3)
    with pytest.raises(ValueError, match=r"Argument `input_shape` must be an integer >= 1"):
        MLPHyperModel(input_shape=(0,), num_classes=3)
