"""Preprocessing layers against float64 numpy references from the chapter's formulas."""

import re

import keras
import numpy as np
import pytest

from kerastrain import layers
from kerastrain.testing import TestCase


def numpy_pca(x, k):
    """Float64 reference: eigenvectors of the sample covariance, largest eigenvalues first."""
    mean = x.mean(0)
    covariance = np.cov(x, rowvar=False)  # 1/(n - 1)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][:k]
    return mean, values[order], vectors[:, order]


def align_signs(actual, reference):
    """Principal directions are defined up to sign: flip actual's columns to match."""
    return actual * np.sign(np.sum(actual * reference, axis=0, keepdims=True))


class MinMaxScalingTest(TestCase):
    def test_matches_reference(self):
        x = self.rng.normal(size=(40, 3)) * [1, 10, 100] + [0, -5, 1000]
        layer = layers.MinMaxScaling(feature_range=(-1, 2))
        layer.adapt(x)
        test = self.rng.normal(size=(5, 3)) * [1, 10, 100] + [0, -5, 1000]
        low, high = x.min(0), x.max(0)
        expected = -1 + (test - low) * 3 / (high - low)
        self.assertAllClose(layer(test.astype("float32")), expected, rtol=1e-5, atol=1e-5)
        scaled = keras.ops.convert_to_numpy(layer(x.astype("float32")))
        self.assertAllClose(scaled.min(0), [-1, -1, -1], atol=1e-5)
        self.assertAllClose(scaled.max(0), [2, 2, 2], atol=1e-5)

    def test_global_axis_and_constant_feature(self):
        x = np.array([[1.0, 5.0], [3.0, 5.0]])
        layer = layers.MinMaxScaling(axis=None)
        layer.adapt(x)
        self.assertAllClose(layer(x), (x - 1) / 4)
        per_feature = layers.MinMaxScaling()
        per_feature.adapt(x)
        # Constant feature: range 1, as scikit-learn's MinMaxScaler.
        self.assertAllClose(per_feature(x), [[0, 0], [1, 0]])

    def test_matches_scikit_learn(self):
        from sklearn.preprocessing import MinMaxScaler

        x = self.rng.normal(size=(30, 4))
        layer = layers.MinMaxScaling(feature_range=(0, 5))
        layer.adapt(x)
        expected = MinMaxScaler(feature_range=(0, 5)).fit(x).transform(x)
        self.assertAllClose(layer(x.astype("float32")), expected, rtol=1e-5, atol=1e-5)


class DecimalScalingTest(TestCase):
    def test_textbook_example(self):
        # Han, Kamber & Pei, section 3.5.2: values in [-986, 917] -> j = 3, -986 -> -0.986.
        layer = layers.DecimalScaling(axis=None)
        layer.adapt(np.array([[-986.0], [917.0], [12.0]]))
        self.assertAllClose(layer(np.array([[-986.0], [917.0]])), [[-0.986], [0.917]],
                            rtol=1e-6)

    def test_matches_reference_per_feature(self):
        x = np.array([[0.5, -1000.0, 0.004, 0.0], [0.09, 999.0, -0.002, 0.0]])
        layer = layers.DecimalScaling()
        layer.adapt(x)
        largest = np.abs(x).max(0)
        # Smallest integer j with max|x| / 10^j < 1, found by search (not by log10).
        exponents = [0 if m == 0 else min(j for j in range(-10, 10) if m / 10.0**j < 1)
                     for m in largest]
        self.assertEqual(exponents, [0, 4, -2, 0])
        self.assertAllClose(layer(x), x / 10.0 ** np.array(exponents), rtol=1e-6)
        self.assertLess(np.abs(keras.ops.convert_to_numpy(layer(x))).max(), 1.0)


class MeanSubtractionTest(TestCase):
    def test_mean_image_and_mean_channel(self):
        images = self.rng.uniform(0, 255, size=(10, 4, 4, 3))
        image = layers.MeanSubtraction()
        image.adapt(images)
        self.assertEqual(tuple(image.mean.shape), (4, 4, 3))  # AlexNet's mean image
        self.assertAllClose(image(images), images - images.mean(0), rtol=1e-5, atol=1e-4)
        channel = layers.MeanSubtraction(per_channel=True)
        channel.adapt(images)
        self.assertEqual(tuple(channel.mean.shape), (3,))  # VGG's mean channel
        self.assertAllClose(channel(images), images - images.mean((0, 1, 2)),
                            rtol=1e-5, atol=1e-4)

    def test_adapt_accepts_a_dataset(self):
        import tensorflow as tf

        x = self.rng.normal(size=(12, 3))
        layer = layers.MeanSubtraction()
        layer.adapt(tf.data.Dataset.from_tensor_slices(x).batch(5))
        self.assertAllClose(layer.mean, x.mean(0), rtol=1e-6)


class PCATest(TestCase):
    def setUp(self):
        super().setUp()
        mixing = self.rng.normal(size=(5, 5))
        self.x = self.rng.normal(size=(200, 5)) @ mixing + [1, 2, 3, 4, 5]

    def test_matches_reference(self):
        layer = layers.PCA(3)
        layer.adapt(self.x)
        mean, values, vectors = numpy_pca(self.x, 3)
        components = keras.ops.convert_to_numpy(layer.components).astype(np.float64)
        self.assertAllClose(align_signs(components, vectors), vectors, atol=1e-5)
        self.assertAllClose(layer.explained_variance, values, rtol=1e-5)
        projected = keras.ops.convert_to_numpy(layer(self.x.astype("float32")))
        self.assertAllClose(align_signs(projected, (self.x - mean) @ vectors),
                            (self.x - mean) @ vectors, rtol=1e-4, atol=1e-4)

    def test_matches_scikit_learn(self):
        from sklearn.decomposition import PCA as SklearnPCA

        expected = SklearnPCA(2, whiten=True).fit(self.x).transform(self.x)
        layer = layers.PCA(2, whiten=True)
        layer.adapt(self.x)
        actual = keras.ops.convert_to_numpy(layer(self.x.astype("float32")))
        self.assertAllClose(align_signs(actual, expected), expected, rtol=1e-4, atol=1e-4)

    def test_statistics_are_computed_in_float64(self):
        # Unit-variance features around 1e8: float32 spacing there is 8, so a float32
        # computation would see (almost) constant data; float64 keeps the variance.
        x = 1e8 + self.rng.normal(size=(500, 2)) @ np.array([[1.0, 0.5], [0.0, 2.0]])
        layer = layers.PCA(2)
        layer.adapt(x)
        _, values, _ = numpy_pca(x, 2)
        self.assertAllClose(layer.explained_variance, values, rtol=1e-6)
        self.assertLess(float(np.var(x.astype(np.float32)[:, 0] - np.float32(1e8))), 0.1)

    def test_whitened_training_data_has_identity_covariance(self):
        layer = layers.PCA(5, whiten=True)
        layer.adapt(self.x)
        y = keras.ops.convert_to_numpy(layer(self.x.astype("float32"))).astype(np.float64)
        self.assertAllClose(np.cov(y, rowvar=False), np.eye(5), atol=1e-4)
        self.assertAllClose(y.mean(0), np.zeros(5), atol=1e-4)


class ZCAWhiteningTest(TestCase):
    def test_identity_covariance_and_reference(self):
        x = self.rng.normal(size=(300, 4)) @ self.rng.normal(size=(4, 4))
        epsilon = 1e-3
        layer = layers.ZCAWhitening(epsilon=epsilon)
        layer.adapt(x)
        mean, values, vectors = numpy_pca(x, 4)
        whitening = vectors @ np.diag(1 / np.sqrt(values + epsilon)) @ vectors.T
        y = keras.ops.convert_to_numpy(layer(x.astype("float32"))).astype(np.float64)
        self.assertAllClose(y, (x - mean) @ whitening, rtol=1e-4, atol=1e-4)
        # Covariance = U diag(λ/(λ+ε)) Uᵀ: the identity up to the ε effect.
        expected_covariance = vectors @ np.diag(values / (values + epsilon)) @ vectors.T
        self.assertAllClose(np.cov(y, rowvar=False), expected_covariance, atol=1e-4)
        self.assertAllClose(np.cov(y, rowvar=False), np.eye(4), atol=epsilon / values.min() * 2)
        matrix = keras.ops.convert_to_numpy(layer.whitening)
        self.assertAllClose(matrix, matrix.T, atol=1e-6)  # ZCA: symmetric

    def test_zero_epsilon_on_full_rank_data_is_exact(self):
        x = self.rng.normal(size=(100, 3))
        layer = layers.ZCAWhitening(epsilon=0)
        layer.adapt(x)
        y = keras.ops.convert_to_numpy(layer(x.astype("float32"))).astype(np.float64)
        self.assertAllClose(np.cov(y, rowvar=False), np.eye(3), atol=1e-5)


class NotAdaptedTest(TestCase):
    def test_call_before_adapt_raises_but_model_building_works(self):
        layer = layers.PCA(2)
        model = keras.Sequential([keras.Input((3,)), layer])
        with self.assertRaisesRegex(ValueError, re.escape(
                f"Layer {layer.name!r} (PCA) must be adapted before it transforms data: "
                "call layer.adapt(training_data) first.")):
            model.predict(np.ones((2, 3)), verbose=0)
        layer.adapt(self.rng.normal(size=(10, 3)))
        self.assertTrue(layer.is_adapted)
        copy = layers.PCA(2)
        copy.build((None, 3))
        self.assertFalse(copy.is_adapted)
        copy.set_weights(layer.get_weights())
        self.assertTrue(copy.is_adapted)
        self.assertEqual(model.predict(np.ones((2, 3)), verbose=0).shape, (2, 2))


GOOD = np.arange(12.0).reshape(6, 2)
ADAPT_ERRORS = [
    (layers.MinMaxScaling, np.zeros((0, 2)), ValueError,
     "Argument `data` must be non-empty. Received: data=<array of shape (0, 2)>"),
    (layers.DecimalScaling, [[1.0, np.nan], [np.inf, 2.0]], ValueError,
     "Argument `data` must contain only finite values. Received: data=<array of shape (2, 2) "
     "with 2 NaN/inf values>"),
    (layers.MeanSubtraction, np.ones(5), ValueError,
     "Argument `data` must have a batch axis and at least one feature axis (rank >= 2). "
     "Received: data=<array of shape (5,)>"),
    (lambda: layers.PCA(2), np.ones((1, 2)), ValueError,
     "Argument `data` must hold at least 2 samples to estimate a covariance."),
    (lambda: layers.PCA(2), ["a", "b"], TypeError,
     "Argument `data` must be a numeric array, tensor or tf.data.Dataset of arrays."),
    (lambda: layers.PCA(3), GOOD, ValueError,
     "Argument `n_components` must be <= the number of input features (2). "
     "Received: n_components=3"),
    (lambda: layers.PCA(2, whiten=True), np.c_[GOOD[:, 0], 2 * GOOD[:, 0]], ValueError,
     "Argument `epsilon` must be > 0 to whiten data whose covariance has rank 1 < 2 "
     "components. Received: epsilon=0.0"),
    (lambda: layers.ZCAWhitening(epsilon=0), np.c_[GOOD[:, 0], 2 * GOOD[:, 0]], ValueError,
     "Argument `epsilon` must be > 0 to whiten data whose covariance has rank 1 < 2"),
]


@pytest.mark.parametrize("make,data,error,message", ADAPT_ERRORS)
def test_adapt_errors(make, data, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make().adapt(data)


def test_adapt_with_other_shape_than_built_raises():
    layer = layers.MinMaxScaling()
    layer.adapt(GOOD)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `data` must have the shape the layer was built for, (None, 2). "
            "Received: data=<array of shape (4, 3)>")):
        layer.adapt(np.ones((4, 3)))


def test_adapt_on_an_empty_dataset_raises():
    import tensorflow as tf

    empty = tf.data.Dataset.from_tensor_slices(np.ones((4, 2))).batch(2).take(0)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `data` must be non-empty. Received: data=<a dataset with no batches>")):
        layers.MinMaxScaling().adapt(empty)


def test_build_errors():
    with pytest.raises(ValueError, match=re.escape(
            "needs a known size on axis -1. Received: input_shape=(None, None)")):
        layers.MinMaxScaling().build((None, None))
    with pytest.raises(ValueError, match=re.escape(
            "Argument `axis` must name a non-batch axis of inputs of rank 2. Received: axis=0")):
        layers.MinMaxScaling(axis=0).build((None, 3))
    with pytest.raises(ValueError, match="needs known non-batch dimensions. Received: "
                       r"input_shape=\(None, None, 3\)"):
        layers.MeanSubtraction().build((None, None, 3))
    with pytest.raises(ValueError, match=r"needs a known last \(feature\) dimension"):
        layers.ZCAWhitening().build((None, None))


CONSTRUCTOR_ERRORS = [
    (lambda: layers.MinMaxScaling(feature_range=(1, 1)), ValueError,
     "Argument `feature_range` must satisfy low < high. Received: feature_range=(1, 1)"),
    (lambda: layers.MinMaxScaling(feature_range=(0, 1, 2)), ValueError,
     "Argument `feature_range` must be a pair (low, high). Received: feature_range=(0, 1, 2)"),
    (lambda: layers.MinMaxScaling(feature_range=1), TypeError,
     "Argument `feature_range` must be a pair (low, high). Received: feature_range=1 of type int"),
    (lambda: layers.DecimalScaling(axis="last"), TypeError,
     "Argument `axis` must be an int or None. Received: axis='last' of type str"),
    (lambda: layers.MeanSubtraction(per_channel=1), TypeError,
     "Argument `per_channel` must be a bool. Received: per_channel=1 of type int"),
    (lambda: layers.PCA(0), ValueError,
     "Argument `n_components` must be an integer >= 1. Received: n_components=0"),
    (lambda: layers.PCA(2, whiten="yes"), TypeError,
     "Argument `whiten` must be a bool. Received: whiten='yes' of type str"),
    (lambda: layers.PCA(2, epsilon=-1.0), ValueError,
     "Argument `epsilon` must be >= 0. Received: epsilon=-1.0"),
    (lambda: layers.ZCAWhitening(epsilon=-1e-5), ValueError,
     "Argument `epsilon` must be >= 0. Received: epsilon=-1e-05"),
]


@pytest.mark.parametrize("make,error,message", CONSTRUCTOR_ERRORS)
def test_constructor_errors(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()
