"""PCA (optionally whitened) and ZCA whitening, adapted in float64 (section 4.4)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kerastrain._validation import check_integer, check_positive, check_type
from kerastrain.layers._adapt import AdaptableLayer


def covariance_eigh(array):
    """Mean, and eigenpairs (descending) of the sample covariance (1/(n − 1)), float64.

    Each eigenvector's sign is fixed so its largest-magnitude entry is positive.
    """
    flat = array.reshape(-1, array.shape[-1])
    if flat.shape[0] < 2:
        raise ValueError(f"Argument `data` must hold at least 2 samples to estimate a "
                         f"covariance. Received: data=<array of shape {array.shape}>")
    mean = flat.mean(axis=0)
    centered = flat - mean
    covariance = centered.T @ centered / (flat.shape[0] - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = np.clip(eigenvalues[order], 0.0, None), eigenvectors[:, order]
    rows = np.argmax(np.abs(eigenvectors), axis=0)
    eigenvectors *= np.sign(eigenvectors[rows, np.arange(eigenvectors.shape[1])])
    return mean, eigenvalues, eigenvectors


def _check_whitenable(layer, eigenvalues, count):
    """Whitening divides by √(λ + ε): refuse zero-variance directions when ε = 0."""
    kept = eigenvalues[:count]
    tiny = 1e-12 * max(float(eigenvalues[0]), 1e-300)
    if layer.epsilon == 0.0 and np.any(kept <= tiny):
        rank = int(np.sum(eigenvalues > tiny))
        raise ValueError(
            f"Argument `epsilon` must be > 0 to whiten data whose covariance has rank {rank} "
            f"< {count} components. Received: epsilon=0.0 Set epsilon (e.g. 1e-5) "
            "or reduce the number of components.")


def _feature_count(layer, input_shape):
    features = input_shape[-1]
    if features is None or len(input_shape) < 2:
        raise ValueError(f"Layer {layer.name!r} needs a known last (feature) dimension. "
                         f"Received: input_shape={tuple(input_shape)}")
    return int(features)


@keras.saving.register_keras_serializable(package="kerastrain")
class PCA(AdaptableLayer):
    """Projection on the leading principal components, optionally whitened.

    ``y = (x − μ) V_k`` with ``V_k`` the eigenvectors of the training data's
    sample covariance for its k largest eigenvalues λ; with ``whiten=True``
    ``y_k /= √(λ_k + ε)`` so the training data's covariance becomes the
    identity. Features are on the last axis (flatten images first). Statistics
    are computed in float64 by `adapt`; the components equal scikit-learn's
    `PCA` up to sign.

    Args:
        n_components: number of components kept, 1 <= k <= features.
        whiten: divide each component by its standard deviation (default False).
        epsilon: ε >= 0 added to λ before whitening (default 0.0).

    Example:
        >>> pca = PCA(8, whiten=True); pca.adapt(x_train)
        >>> model = keras.Sequential([keras.Input((64,)), pca, keras.layers.Dense(10)])
    """

    def __init__(self, n_components, whiten=False, epsilon=0.0, **kwargs):
        super().__init__(**kwargs)
        self.n_components = check_integer("n_components", n_components, minimum=1)
        self.whiten = check_type("whiten", whiten, bool, "a bool")
        self.epsilon = check_positive("epsilon", epsilon, allow_zero=True)

    def build_statistics(self, input_shape):
        features = _feature_count(self, input_shape)
        if self.n_components > features:
            raise ValueError(
                f"Argument `n_components` must be <= the number of input features "
                f"({features}). Received: n_components={self.n_components}")
        self.mean = self.add_statistic("mean", (features,))
        self.components = self.add_statistic("components", (features, self.n_components),
                                             keras.initializers.Identity())
        self.explained_variance = self.add_statistic("explained_variance",
                                                     (self.n_components,), "ones")
        self.scale = self.add_statistic("scale", (self.n_components,), "ones")

    def _statistics(self, array):
        mean, eigenvalues, eigenvectors = covariance_eigh(array)
        k = self.n_components
        if self.whiten:
            _check_whitenable(self, eigenvalues, k)
            scale = 1.0 / np.sqrt(eigenvalues[:k] + self.epsilon)
        else:
            scale = np.ones(k)
        return {"mean": mean, "components": eigenvectors[:, :k],
                "explained_variance": eigenvalues[:k], "scale": scale}

    def _transform(self, inputs):
        return ops.matmul(inputs - self.mean, self.components) * self.scale

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.n_components,)

    def get_config(self):
        return {**super().get_config(), "n_components": self.n_components,
                "whiten": self.whiten, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="kerastrain")
class ZCAWhitening(AdaptableLayer):
    """ZCA whitening: decorrelate and equalize variances, staying close to the input.

    ``y = (x − μ) U diag(1/√(λ + ε)) Uᵀ`` with ``U, λ`` the eigenvectors and
    eigenvalues of the training data's sample covariance (float64, by `adapt`).
    The whitened training data has covariance ``diag(λ/(λ + ε))`` in the
    eigenbasis, i.e. the identity up to ε. Features are on the last axis
    (flatten images first).

    Args:
        epsilon: ε >= 0 regularizing small eigenvalues (default 1e-5; must be
            > 0 when the data covariance is singular).

    Example:
        >>> zca = ZCAWhitening(epsilon=1e-5); zca.adapt(x_train)

    Reference:
        Bell & Sejnowski, "The 'independent components' of natural scenes are
        edge filters", Vision Research 1997; Krizhevsky, "Learning Multiple
        Layers of Features from Tiny Images", 2009, appendix A.
    """

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = check_positive("epsilon", epsilon, allow_zero=True)

    def build_statistics(self, input_shape):
        features = _feature_count(self, input_shape)
        self.mean = self.add_statistic("mean", (features,))
        self.whitening = self.add_statistic("whitening", (features, features),
                                            keras.initializers.Identity())

    def _statistics(self, array):
        mean, eigenvalues, eigenvectors = covariance_eigh(array)
        _check_whitenable(self, eigenvalues, len(eigenvalues))
        whitening = (eigenvectors / np.sqrt(eigenvalues + self.epsilon)) @ eigenvectors.T
        return {"mean": mean, "whitening": whitening}

    def _transform(self, inputs):
        return ops.matmul(inputs - self.mean, self.whitening)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
