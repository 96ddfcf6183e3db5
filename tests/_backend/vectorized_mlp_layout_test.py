"""The host-side flat layout of a vectorized member (`ravel` / `unravel`) is the one the
compiled program reads: JAX's own ``ravel_pytree`` of the same parameters (JAX only)."""

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(keras.config.backend() != "jax",
                                reason="the vectorized program is JAX's")


@pytest.mark.parametrize("batch_norm,columns,depth", [(False, 4, 1), (True, 8, 3)])
def test_ravel_and_unravel_match_jax_ravel_pytree(batch_norm, columns, depth):
    from jax.flatten_util import ravel_pytree

    from kerastrain._backend import _vectorized_mlp as program

    shape = program.GroupShape(
        input_dim=5, outputs=3, classification=True, depth=depth, width=4, columns=columns,
        activations=("relu",), families=("adam",), schedules=("constant",),
        batch_norm=batch_norm, dropout=False, batch_size=2, members=1)
    rng = np.random.default_rng(0)
    params = {key: rng.normal(size=value.shape).astype(np.float32)
              for key, value in program.parameter_template(shape).items()}
    reference, unravel_reference = ravel_pytree(params)
    flat = program.ravel(params)
    np.testing.assert_array_equal(flat, np.asarray(reference))
    back = program.unravel(shape, flat)
    assert sorted(back) == sorted(params)
    for key, value in unravel_reference(reference).items():
        np.testing.assert_array_equal(back[key], np.asarray(value))
