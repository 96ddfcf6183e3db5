"""`prefix_draw`: the same values as a direct keras.random draw, on every backend."""

import keras
import numpy as np
import pytest

from kerastrain import initializers
from kerastrain._backend._random import prefix_draw

SHAPES = [(1,), (7,), (64, 96), (37, 11), (3, 3, 16, 8), (1500,), (1 << 12,), (1 << 12, 3),
          (600, 1000)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["normal", "uniform", "truncated_normal"])
def test_prefix_draw_equals_direct_draw_bit_for_bit(shape, kind):
    def draw(s):
        if kind == "uniform":
            return keras.random.uniform(s, minval=-0.3, maxval=0.2, seed=1234)
        return getattr(keras.random, kind)(s, mean=0.1, stddev=0.05, seed=1234)

    got = keras.ops.convert_to_numpy(prefix_draw(draw, shape))
    want = keras.ops.convert_to_numpy(draw(shape))
    assert got.shape == want.shape == shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("cls", [initializers.RandomNormal, initializers.RandomUniform,
                                 initializers.GlorotUniform, initializers.HeNormal,
                                 initializers.LeCunNormal])
def test_initializers_draw_what_keras_random_draws_for_their_seed(cls):
    init = cls(seed=99)
    got = keras.ops.convert_to_numpy(init((50, 30)))
    # The direct draw (no size classes), by the distribution's own formula.
    config = init.get_config()
    if cls is initializers.RandomNormal:
        want = keras.random.normal((50, 30), mean=config["mean"], stddev=config["stddev"],
                                   seed=99)
    elif cls is initializers.RandomUniform:
        want = keras.random.uniform((50, 30), minval=-config["limit"], maxval=config["limit"],
                                    seed=99)
    elif init.distribution == "normal":
        want = keras.random.normal((50, 30), stddev=np.sqrt(init.variance((50, 30))), seed=99)
    else:
        limit = np.sqrt(3 * init.variance((50, 30)))
        want = keras.random.uniform((50, 30), minval=-limit, maxval=limit, seed=99)
    np.testing.assert_array_equal(got, keras.ops.convert_to_numpy(want))
    assert got.dtype == np.float32


def test_draws_of_many_shapes_use_few_size_classes_on_jax_only():
    calls = []

    def draw(shape):
        calls.append(shape)
        return keras.random.normal(shape, seed=5)

    for width in range(100, 140):
        prefix_draw(draw, (64, width))
    if keras.config.backend() == "jax":  # one compiled program per size class
        # 64 x 100..139 = 6,400..8,896 elements: all in the 2^16 class.
        assert set(calls) == {(1 << 16,)}
    else:  # no per-shape compiles to save: the direct draws
        assert calls == [(64, width) for width in range(100, 140)]
