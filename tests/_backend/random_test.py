"""Random initializers draw NumPy's values for their seed: the same weights on every backend,
and no random program compiled per weight shape on JAX."""

import math

import keras
import numpy as np
import pytest

from kerastrain import initializers
from kerastrain._backend._random import host_tensor

SHAPES = [(1,), (64, 96), (37, 11), (3, 3, 16, 8), (600, 1000)]


def _reference(init, shape):
    """The documented draw, written out in float64 NumPy from the initializer's config."""
    rng = np.random.default_rng(init.seed)
    config = init.get_config()
    if isinstance(init, initializers.RandomNormal):
        return config["mean"] + config["stddev"] * rng.standard_normal(shape)
    if isinstance(init, initializers.RandomUniform):
        return rng.uniform(-config["limit"], config["limit"], shape)
    variance = init.variance(shape)
    if init.distribution == "normal":
        return math.sqrt(variance) * rng.standard_normal(shape)
    limit = math.sqrt(3 * variance)
    return rng.uniform(-limit, limit, shape)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("make", [
    lambda: initializers.RandomNormal(mean=0.1, stddev=0.05, seed=99),
    lambda: initializers.RandomUniform(limit=0.3, seed=99),
    lambda: initializers.GlorotUniform(seed=99), lambda: initializers.GlorotNormal(seed=99),
    lambda: initializers.HeNormal(seed=99), lambda: initializers.HeUniform(seed=99),
    lambda: initializers.LeCunNormal(seed=99), lambda: initializers.LeCunUniform(seed=99),
], ids=["normal", "uniform", "glorot_u", "glorot_n", "he_n", "he_u", "lecun_n", "lecun_u"])
def test_initializers_draw_numpy_values_for_their_seed(make, shape):
    init = make()
    got = keras.ops.convert_to_numpy(init(shape))
    want = _reference(init, shape)
    assert got.shape == shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, want.astype(np.float32))
    # float64 requested: the float64 draw itself, not a float32 rounding of it.
    wide = keras.ops.convert_to_numpy(init(shape, dtype="float64"))
    assert wide.dtype == (np.float64 if _has_float64() else np.float32)
    np.testing.assert_array_equal(wide, want.astype(wide.dtype))


def _has_float64():
    """JAX keeps float64 only with ``jax_enable_x64`` (off by default)."""
    if keras.config.backend() != "jax":
        return True
    import jax

    return bool(jax.config.jax_enable_x64)


def test_a_seed_draws_different_values_for_different_seeds():
    first = keras.ops.convert_to_numpy(initializers.HeNormal(seed=1)((20, 30)))
    second = keras.ops.convert_to_numpy(initializers.HeNormal(seed=2)((20, 30)))
    assert not np.allclose(first, second)


def test_new_shapes_draw_on_the_host_and_compile_nothing(monkeypatch):
    def no_backend_draw(*args, **kwargs):
        raise AssertionError("drew with keras.random")

    monkeypatch.setattr(keras.random, "normal", no_backend_draw)
    monkeypatch.setattr(keras.random, "uniform", no_backend_draw)
    initializers.HeNormal(seed=5)((64, 99))  # the process's first transfer of this dtype
    compiles = []
    listener = None
    if keras.config.backend() == "jax":  # every new shape used to compile a random program
        import jax.monitoring

        def listener(event, duration, **kwargs):
            if event == "/jax/core/compile/backend_compile_duration":
                compiles.append(event)

        jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        for width in range(100, 140):
            initializers.HeNormal(seed=5)((64, width))
            initializers.RandomUniform(seed=5)((width,))
    finally:
        if listener is not None:
            jax.monitoring.unregister_event_duration_listener(listener)
    assert compiles == []


def test_host_tensor_casts_to_the_requested_dtype():
    value = keras.ops.convert_to_numpy(host_tensor(np.arange(3, dtype=np.float64), "float32"))
    assert value.dtype == np.float32
    np.testing.assert_array_equal(value, [0.0, 1.0, 2.0])
