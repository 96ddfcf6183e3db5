"""Min-max scaling, decimal scaling and mean subtraction (section 4.4)."""

from __future__ import annotations

import keras
import numpy as np

from kerastrain._validation import check_finite_number, check_type
from kerastrain.layers._adapt import (
    AdaptableLayer,
    broadcastable,
    feature_axis,
    reduce_axes,
    statistic_shape,
)


def _feature_range(value):
    check_type("feature_range", value, (tuple, list), "a pair (low, high)")
    if len(value) != 2:
        raise ValueError(f"Argument `feature_range` must be a pair (low, high). "
                         f"Received: feature_range={value!r}")
    low = check_finite_number("feature_range", value[0])
    high = check_finite_number("feature_range", value[1])
    if not low < high:
        raise ValueError(f"Argument `feature_range` must satisfy low < high. "
                         f"Received: feature_range={value!r}")
    return (low, high)


@keras.saving.register_keras_serializable(package="kerastrain")
class MinMaxScaling(AdaptableLayer):
    """Min-max scaling adapted to the training data.

    ``y = low + (x − min) · (high − low) / (max − min)``, with min and max per
    feature along ``axis`` (computed in float64 by `adapt`). A constant feature
    (max = min) uses a range of 1, as scikit-learn's `MinMaxScaler` does.

    Args:
        feature_range: ``(low, high)`` with low < high (default (0, 1)).
        axis: the feature axis kept separate, or None for one global min/max
            (default -1).

    Example:
        >>> scale = MinMaxScaling(); scale.adapt(x_train)
        >>> model = keras.Sequential([keras.Input((4,)), scale, keras.layers.Dense(1)])
    """

    def __init__(self, feature_range=(0.0, 1.0), axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.feature_range = _feature_range(feature_range)
        self.axis = feature_axis("axis", axis)

    def build_statistics(self, input_shape):
        shape = statistic_shape(self, input_shape, self.axis)
        self.minimum = self.add_statistic("minimum", shape)
        self.scale = self.add_statistic("scale", shape, "ones")

    def _statistics(self, array):
        axes = reduce_axes(array.ndim, self.axis)
        minimum, maximum = array.min(axis=axes), array.max(axis=axes)
        data_range = maximum - minimum
        data_range = np.where(data_range == 0.0, 1.0, data_range)
        low, high = self.feature_range
        return {"minimum": minimum, "scale": (high - low) / data_range}

    def _transform(self, inputs):
        ndim = len(inputs.shape)
        minimum = broadcastable(self.minimum, ndim, self.axis)
        scale = broadcastable(self.scale, ndim, self.axis)
        return (inputs - minimum) * scale + self.feature_range[0]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "feature_range": list(self.feature_range),
                "axis": self.axis}


@keras.saving.register_keras_serializable(package="kerastrain")
class DecimalScaling(AdaptableLayer):
    """Decimal scaling: ``y = x / 10^j`` with the smallest integer j making max|y| < 1.

    j is computed per feature along ``axis`` in float64 by `adapt`
    (``j = ⌊log10 max|x|⌋ + 1``; j may be negative for features already below
    0.1; an all-zero feature keeps j = 0).

    Args:
        axis: the feature axis kept separate, or None for one global j
            (default -1).

    Example:
        >>> scale = DecimalScaling(); scale.adapt(x_train)   # max |x| = 986 -> x / 1000

    Reference:
        Han, Kamber & Pei, "Data Mining: Concepts and Techniques", 3rd ed.,
        section 3.5.2.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = feature_axis("axis", axis)

    def build_statistics(self, input_shape):
        self.divisor = self.add_statistic(
            "divisor", statistic_shape(self, input_shape, self.axis), "ones")

    def _statistics(self, array):
        largest = np.atleast_1d(np.abs(array).max(axis=reduce_axes(array.ndim, self.axis)))
        exponent = np.zeros_like(largest)
        positive = largest > 0
        exponent[positive] = np.floor(np.log10(largest[positive])) + 1
        # Guard against log10 rounding: enforce the definition exactly.
        exponent = np.where(positive & (largest / 10.0**exponent >= 1), exponent + 1, exponent)
        exponent = np.where(positive & (largest / 10.0 ** (exponent - 1) < 1),
                            exponent - 1, exponent)
        divisor = 10.0**exponent
        return {"divisor": divisor.reshape(self.divisor.shape)}

    def _transform(self, inputs):
        return inputs / broadcastable(self.divisor, len(inputs.shape), self.axis)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@keras.saving.register_keras_serializable(package="kerastrain")
class MeanSubtraction(AdaptableLayer):
    """Zero-centring by the training mean: the mean image or the mean channel.

    ``per_channel=False`` subtracts the mean over samples of every position —
    AlexNet's mean image (``[32, 32, 3]`` on CIFAR); ``per_channel=True``
    subtracts one mean per channel (last axis) over samples and positions —
    VGG's mean channel (``[3]``). Computed in float64 by `adapt`.

    Args:
        per_channel: subtract a per-channel mean instead of a mean image
            (default False).

    Example:
        >>> center = MeanSubtraction(per_channel=True); center.adapt(images)
        >>> model = keras.Sequential([keras.Input((32, 32, 3)), center, ...])
    """

    def __init__(self, per_channel=False, **kwargs):
        super().__init__(**kwargs)
        self.per_channel = check_type("per_channel", per_channel, bool, "a bool")

    def build_statistics(self, input_shape):
        shape = tuple(input_shape[-1:] if self.per_channel else input_shape[1:])
        if any(dim is None for dim in shape) or not shape:
            raise ValueError(f"Layer {self.name!r} needs known non-batch dimensions. "
                             f"Received: input_shape={tuple(input_shape)}")
        self.mean = self.add_statistic("mean", shape)

    def _statistics(self, array):
        axes = tuple(range(array.ndim - 1)) if self.per_channel else 0
        return {"mean": array.mean(axis=axes)}

    def _transform(self, inputs):
        return inputs - self.mean

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "per_channel": self.per_channel}
