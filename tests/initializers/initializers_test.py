"""Initializers: statistics against the papers' formulas, SVD reference, warning, errors."""

import math
import re
import warnings

import keras
import numpy as np
import pytest

from kerastrain import initializers
from kerastrain.testing import TestCase

# (class, kwargs, variance of the paper's formula as a function of (fan_in, fan_out))
VARIANCE_CASES = [
    (initializers.RandomNormal, {}, lambda fi, fo: 0.01**2),  # chapter: N(0, 0.01²)
    (initializers.RandomNormal, {"stddev": 0.5}, lambda fi, fo: 0.25),
    (initializers.RandomUniform, {}, lambda fi, fo: 0.05**2 / 3),  # U[-r, r]: r²/3
    (initializers.GlorotNormal, {}, lambda fi, fo: 2 / (fi + fo)),  # Glorot & Bengio 2010
    (initializers.GlorotUniform, {}, lambda fi, fo: 2 / (fi + fo)),
    (initializers.HeNormal, {}, lambda fi, fo: 2 / fi),  # He et al. 2015
    (initializers.HeUniform, {}, lambda fi, fo: 2 / fi),
    (initializers.LeCunNormal, {}, lambda fi, fo: 1 / fi),  # LeCun et al. 1998
    (initializers.LeCunUniform, {}, lambda fi, fo: 1 / fi),
]
UNIFORM = (initializers.RandomUniform, initializers.GlorotUniform, initializers.HeUniform,
           initializers.LeCunUniform)


@pytest.mark.parametrize("cls,kwargs,formula", VARIANCE_CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(VARIANCE_CASES)])
@pytest.mark.parametrize("shape", [(120, 250), (3, 3, 16, 40)])
def test_sample_variance_matches_formula(cls, kwargs, formula, shape):
    values = keras.ops.convert_to_numpy(cls(seed=3, **kwargs)(shape)).astype(np.float64)
    receptive = math.prod(shape[:-2])
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    variance = formula(fan_in, fan_out)
    # 30 000+ samples: the relative standard error of a sample variance is <= 1.2%.
    np.testing.assert_allclose(values.var(), variance, rtol=0.06)
    assert abs(values.mean()) < 6 * math.sqrt(variance / values.size)
    if cls in UNIFORM:
        limit = math.sqrt(3 * variance)
        assert np.abs(values).max() <= limit * (1 + 1e-6)
        assert np.abs(values).max() > 0.99 * limit
    else:  # untruncated Gaussian: some draws lie beyond 2σ (Keras's truncated ones never do)
        assert np.mean(np.abs(values) > 2 * math.sqrt(variance)) > 0.03


def test_compute_fans():
    assert initializers.compute_fans((7, 5)) == (7, 5)
    assert initializers.compute_fans((3, 3, 4, 8)) == (36, 72)
    assert initializers.compute_fans((6,)) == (6, 6)


def test_xavier_aliases_are_glorot():
    assert initializers.XavierNormal is initializers.GlorotNormal
    assert initializers.XavierUniform is initializers.GlorotUniform


def test_seeded_initializers_are_reproducible():
    first = initializers.HeNormal(seed=5)((4, 3))
    second = initializers.HeNormal(seed=5)((4, 3))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(first),
                                  keras.ops.convert_to_numpy(second))


class OrthogonalTest(TestCase):
    def test_tall_wide_and_conv_are_orthogonal_times_gain(self):
        for shape, gain in [((40, 12), 1.0), ((12, 40), 2.0), ((3, 3, 4, 8), 0.5)]:
            w = keras.ops.convert_to_numpy(initializers.Orthogonal(gain=gain, seed=2)(shape))
            w = w.reshape(-1, shape[-1]).astype(np.float64)
            gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
            self.assertAllClose(gram, gain**2 * np.eye(min(w.shape)), atol=2e-5)

    def test_matches_numpy_svd_of_the_same_gaussian(self):
        # Reference: the chapter's recipe in float64 numpy on the same N(0, 1) draw.
        for shape in [(20, 6), (6, 20)]:
            gaussian = np.random.default_rng(9).standard_normal(shape)
            u, _, vt = np.linalg.svd(gaussian, full_matrices=False)
            reference = 1.5 * (u if shape[0] >= shape[1] else vt)
            actual = keras.ops.convert_to_numpy(initializers.Orthogonal(1.5, seed=9)(shape))
            # Singular vectors are defined up to sign: align each one.
            axis = 0 if shape[0] >= shape[1] else 1
            signs = np.sign(np.sum(actual * reference, axis=axis, keepdims=True))
            self.assertAllClose(actual * signs, reference, atol=1e-4)

    def test_rank_one_shape_raises(self):
        with self.assertRaisesRegex(ValueError, re.escape(
                "Argument `shape` must have at least 2 dimensions for an orthogonal matrix. "
                "Received: shape=(5,)")):
            initializers.Orthogonal()((5,))


class SymmetryWarningTest(TestCase):
    def _build(self, units, **kwargs):
        layer = keras.layers.Dense(units, **kwargs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            layer.build((None, 3))
        return [w for w in caught if issubclass(w.category,
                                                initializers.SymmetricInitializationWarning)]

    def test_zero_hidden_kernel_warns_at_build(self):
        caught = self._build(4, kernel_initializer=initializers.Zeros())
        self.assertEqual(len(caught), 1)
        self.assertIn("Zeros(value=0.0) initializes all 4 units of a kernel of shape (3, 4) "
                      "identically", str(caught[0].message))

    def test_constant_kernel_warns(self):
        self.assertEqual(len(self._build(2, kernel_initializer=initializers.Constant(0.3))), 1)

    def test_constant_bias_and_single_unit_do_not_warn(self):
        self.assertEqual(self._build(4, bias_initializer=initializers.Constant(0.3)), [])
        self.assertEqual(self._build(4, bias_initializer=initializers.ReLUBias()), [])
        self.assertEqual(self._build(1, kernel_initializer=initializers.Zeros()), [])

    def test_zero_kernel_really_keeps_units_identical(self):
        # The reason for the warning: after training, all hidden units are still equal.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", initializers.SymmetricInitializationWarning)
            model = keras.Sequential([
                keras.Input((3,)),
                keras.layers.Dense(4, activation="tanh",
                                   kernel_initializer=initializers.Constant(0.2)),
                keras.layers.Dense(1, kernel_initializer=initializers.Constant(0.3)),
            ])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x = self.rng.normal(size=(16, 3)).astype("float32")
        model.fit(x, x[:, :1], epochs=2, batch_size=8, verbose=0)
        kernel = keras.ops.convert_to_numpy(model.layers[0].kernel)
        self.assertAllClose(kernel, np.repeat(kernel[:, :1], 4, axis=1))


class ConstantTest(TestCase):
    def test_values(self):
        self.assertAllClose(initializers.Constant(0.5)((3,)), np.full(3, 0.5))
        self.assertAllClose(initializers.Zeros()((2,)), np.zeros(2))
        self.assertAllClose(initializers.ReLUBias()((3,)), np.full(3, 0.01))  # chapter: 0.01


ALL = [initializers.RandomNormal(stddev=0.2, seed=1), initializers.RandomUniform(0.3, seed=1),
       initializers.GlorotNormal(seed=1), initializers.GlorotUniform(seed=1),
       initializers.HeNormal(seed=1), initializers.HeUniform(seed=1),
       initializers.LeCunNormal(seed=1), initializers.LeCunUniform(seed=1),
       initializers.Orthogonal(gain=2.0, seed=1), initializers.Constant(0.5),
       initializers.Zeros(), initializers.ReLUBias(0.1)]


class SerializationTest(TestCase):
    def test_config_round_trip(self):
        for initializer in ALL:
            self.run_serialization_test(initializer)

    def test_registered_names_do_not_clash_with_other_kerastrain_classes(self):
        # kerastrain.schedules also has a `Constant`: initializers carry their own prefix.
        self.assertEqual(keras.saving.get_registered_name(initializers.Constant),
                         "kerastrain>initializers.Constant")
        revived = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(initializers.Constant(0.25)))
        self.assertIs(type(revived), initializers.Constant)

    def test_usable_by_registered_name_string(self):
        # For configuration files: kernel_initializer="kerastrain>initializers.HeNormal".
        for initializer in ALL:
            name = keras.saving.get_registered_name(type(initializer))
            self.assertIs(type(keras.initializers.get(name)), type(initializer))
        layer = keras.layers.Dense(3, kernel_initializer="kerastrain>initializers.HeNormal")
        self.assertIsInstance(layer.kernel_initializer, initializers.HeNormal)

    def test_keras_file_round_trip_without_custom_objects(self):
        inputs = keras.Input((4,))
        outputs = inputs
        for index, initializer in enumerate(ALL):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", initializers.SymmetricInitializationWarning)
                outputs = keras.layers.Dense(3, kernel_initializer=initializer,
                                             name=f"dense_{index}")(outputs)
        model = keras.Model(inputs, outputs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", initializers.SymmetricInitializationWarning)
            revived = self.run_saved_model_test(model, self.rng.normal(size=(2, 4)))
        for index, initializer in enumerate(ALL):
            loaded = revived.get_layer(f"dense_{index}").kernel_initializer
            self.assertIs(type(loaded), type(initializer))
            self.assertEqual(loaded.get_config(), initializer.get_config())


BAD_ARGUMENTS = [
    (lambda: initializers.RandomNormal(stddev=0), ValueError,
     "Argument `stddev` must be > 0. Received: stddev=0"),
    (lambda: initializers.RandomNormal(mean=float("nan")), ValueError,
     "Argument `mean` must be a finite number. Received: mean=nan"),
    (lambda: initializers.RandomUniform(limit=-1), ValueError,
     "Argument `limit` must be > 0. Received: limit=-1"),
    (lambda: initializers.HeNormal(seed=-3), ValueError,
     "Argument `seed` must be an integer >= 0. Received: seed=-3"),
    (lambda: initializers.HeNormal(seed="a"), TypeError,
     "Argument `seed` must be an integer. Received: seed='a' of type str"),
    (lambda: initializers.Orthogonal(gain=0.0), ValueError,
     "Argument `gain` must be > 0. Received: gain=0.0"),
    (lambda: initializers.Constant("x"), TypeError,
     "Argument `value` must be a number (int or float). Received: value='x'"),
    (lambda: initializers.ReLUBias(0.0), ValueError,
     "Argument `value` must be > 0. Received: value=0.0"),
]


@pytest.mark.parametrize("make,error,message", BAD_ARGUMENTS)
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()
