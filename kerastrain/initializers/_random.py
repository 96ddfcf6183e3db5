"""Random initializers with the chapter's defaults and the papers' variances."""

from __future__ import annotations

import math
import random

import keras
import numpy as np

from kerastrain._backend._random import host_tensor
from kerastrain._validation import check_finite_number, check_integer, check_positive
from kerastrain.initializers._register import register

_MAX_SEED = 2**31 - 1


def _check_seed(seed):
    if seed is None:
        return random.randint(1, _MAX_SEED)
    return check_integer("seed", seed, minimum=0,
                         hint="Pass a non-negative int, or None for a random one.")


def _shape(shape):
    return tuple(int(dim) for dim in shape)


def compute_fans(shape):
    """``(fan_in, fan_out)`` of a kernel shape, as Keras computes them.

    Dense ``(n_in, n_out)``: the two dimensions. Convolution kernels
    ``(*receptive_field, in_channels, out_channels)``: each channel count times
    the receptive-field size.
    """
    shape = _shape(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _generator(seed):
    """NumPy's generator for ``seed``: every kerastrain random initializer draws its
    float64 values on the host with it, then casts, so a seed gives the same weights on
    every backend and no backend compiles a random program per weight shape (JAX does,
    0.2-2 s each on a 2-core CPU, which an architecture search would pay per new width)."""
    return np.random.default_rng(seed)


class _SeededInitializer(keras.initializers.Initializer):
    """Base class: an int seed (drawn once when ``None``), so every call is reproducible.

    The values are NumPy's: ``numpy.random.default_rng(seed)`` draws them in float64
    (``standard_normal`` / ``uniform``) and they are cast to the requested dtype, the same
    on TensorFlow, JAX and PyTorch.
    """

    def __init__(self, seed=None):
        self._init_seed = seed
        self.seed = _check_seed(seed)

    def get_config(self):
        return {"seed": self._init_seed}


@register
class RandomNormal(_SeededInitializer):
    """Gaussian initializer N(mean, stddev²), by default the chapter's N(0, 0.01²).

    ``W = mean + stddev · randn`` — cs231n's ``0.01 * np.random.randn(n_in, n_out)``.
    Keras's own `RandomNormal` defaults to ``stddev=0.05``. Fine for two or three
    layers; in a deep tanh network the activations shrink towards 0 layer by
    layer (use `GlorotNormal`, `HeNormal` or `lsuv` there).

    Args:
        mean: mean of the distribution (default 0.0).
        stddev: standard deviation, > 0 (default 0.01).
        seed: int, or None to draw one at construction (default None).

    Example:
        >>> layer = keras.layers.Dense(8, kernel_initializer=RandomNormal(stddev=0.01))

    Reference:
        cs231n, "Weight initialization" (Karpathy, 2016).
    """

    def __init__(self, mean=0.0, stddev=0.01, seed=None):
        self.mean = check_finite_number("mean", mean)
        self.stddev = check_positive("stddev", stddev)
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        return host_tensor(self.mean + self.stddev * _generator(self.seed).standard_normal(
            _shape(shape)), dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


@register
class RandomUniform(_SeededInitializer):
    """Uniform initializer on [−limit, limit] (the chapter's interval [−r, r]).

    ``W ~ U[−limit, limit]``, variance ``limit² / 3``.

    Args:
        limit: the half-width r of the interval, > 0 (default 0.05, Keras's
            `RandomUniform` interval).
        seed: int, or None to draw one at construction (default None).

    Example:
        >>> layer = keras.layers.Dense(8, kernel_initializer=RandomUniform(limit=0.1))
    """

    def __init__(self, limit=0.05, seed=None):
        self.limit = check_positive("limit", limit)
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        return host_tensor(_generator(self.seed).uniform(-self.limit, self.limit, _shape(shape)),
                           dtype)

    def get_config(self):
        return {"limit": self.limit, **super().get_config()}


class _VarianceScaling(_SeededInitializer):
    """Zero-mean weights with variance ``scale / fan`` (untruncated)."""

    scale = 1.0
    mode = "fan_in"
    distribution = "normal"

    def variance(self, shape):
        """The variance the paper prescribes for a kernel of this shape."""
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
        return self.scale / max(1.0, fan[self.mode])

    def __call__(self, shape, dtype=None):
        shape = _shape(shape)
        variance = self.variance(shape)
        if self.distribution == "normal":
            values = math.sqrt(variance) * _generator(self.seed).standard_normal(shape)
        else:
            limit = math.sqrt(3.0 * variance)
            values = _generator(self.seed).uniform(-limit, limit, shape)
        return host_tensor(values, dtype)


_VARIANCE_DOC = """{summary}

    Zero-mean {kind} weights with variance ``{formula}``{uniform}. {keras_note}

    Args:
        seed: int, or None to draw one at construction (default None).

    Example:
        >>> layer = keras.layers.Dense(64, activation="{activation}",
        ...                            kernel_initializer={name}())

    Reference:
        {reference}
    """

_GLOROT = "Glorot & Bengio, \"Understanding the difficulty of training deep feedforward neural networks\", AISTATS 2010."
_HE = "He et al., \"Delving Deep into Rectifiers\", ICCV 2015."
_LECUN = "LeCun et al., \"Efficient BackProp\", 1998."
_TRUNCATED = ("Keras's `{name}` draws from a normal truncated at 2σ (stddev rescaled by "
              "1/0.8796); this one is the untruncated Gaussian of the paper.")
_SAME = "Keras's `{name}` is the same distribution."


def _variance_class(name, scale, mode, distribution, formula, summary, activation, reference):
    uniform = (f", i.e. U[−r, r] with r = √(3·var) = √({formula.replace('1/', '3/').replace('2/', '6/')})"
               if distribution == "uniform" else "")
    note = (_TRUNCATED if distribution == "normal" else _SAME).format(name=name)
    cls = type(name, (_VarianceScaling,), {
        "scale": scale, "mode": mode, "distribution": distribution,
        "__doc__": _VARIANCE_DOC.format(summary=summary, kind=distribution, formula=formula,
                                        uniform=uniform, keras_note=note, name=name,
                                        activation=activation, reference=reference),
        "__module__": __name__,
    })
    return register(cls)


GlorotNormal = _variance_class("GlorotNormal", 1.0, "fan_avg", "normal", "2/(n_in + n_out)",
                               "Xavier/Glorot normal initializer (for tanh/sigmoid).",
                               "tanh", _GLOROT)
GlorotUniform = _variance_class("GlorotUniform", 1.0, "fan_avg", "uniform", "2/(n_in + n_out)",
                                "Xavier/Glorot uniform initializer (for tanh/sigmoid).",
                                "tanh", _GLOROT)
HeNormal = _variance_class("HeNormal", 2.0, "fan_in", "normal", "2/n_in",
                           "He normal initializer (for ReLU: ReLU halves the variance).",
                           "relu", _HE)
HeUniform = _variance_class("HeUniform", 2.0, "fan_in", "uniform", "2/n_in",
                            "He uniform initializer (for ReLU).", "relu", _HE)
LeCunNormal = _variance_class("LeCunNormal", 1.0, "fan_in", "normal", "1/n_in",
                              "LeCun normal initializer (cs231n's \"Xavier\" randn(n)/√n).",
                              "tanh", _LECUN)
LeCunUniform = _variance_class("LeCunUniform", 1.0, "fan_in", "uniform", "1/n_in",
                               "LeCun uniform initializer.", "tanh", _LECUN)
XavierNormal = GlorotNormal
XavierUniform = GlorotUniform


@register
class Orthogonal(_SeededInitializer):
    """Orthogonal initializer computed by SVD, times ``gain``.

    Draw ``A ~ N(0, 1)`` (numpy, from ``seed``) of shape ``(prod(shape[:-1]), shape[-1])``, take its
    thin SVD ``A = U S Vᵀ`` (float64 numpy, at build time) and keep the factor of A's shape (``U`` for a tall
    matrix, ``Vᵀ`` for a wide one), so ``WᵀW = gain²·I`` (tall) or
    ``WWᵀ = gain²·I`` (wide). Keras's `Orthogonal` uses a QR decomposition instead.

    Args:
        gain: multiplicative factor, > 0 (default 1.0).
        seed: int, or None to draw one at construction (default None).

    Example:
        >>> layer = keras.layers.Dense(64, kernel_initializer=Orthogonal(gain=1.0))

    Reference:
        Saxe, McClelland & Ganguli, "Exact solutions to the nonlinear dynamics
        of learning in deep linear neural networks", ICLR 2014.
    """

    def __init__(self, gain=1.0, seed=None):
        self.gain = check_positive("gain", gain)
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        shape = _shape(shape)
        if len(shape) < 2:
            raise ValueError(
                f"Argument `shape` must have at least 2 dimensions for an orthogonal "
                f"matrix. Received: shape={shape!r} Use it for kernels, not biases.")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        # Drawn and decomposed once per variable at build time, in float64 numpy:
        # more accurate than float32, the same weights on every backend, and no
        # SVD compiled per shape.
        gaussian = _generator(self.seed).standard_normal((rows, cols))
        u, _, vt = np.linalg.svd(gaussian, full_matrices=False)
        factor = u if rows >= cols else vt
        return host_tensor((self.gain * factor).reshape(shape), dtype)

    def get_config(self):
        return {"gain": self.gain, **super().get_config()}
