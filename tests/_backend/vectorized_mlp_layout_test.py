"""The host-side flat layout of a vectorized member (`ravel` / `unravel`) is the one the
compiled programs read: JAX's own ``ravel_pytree`` of the same parameters (the JAX
program's layout) and the TensorFlow program's in-graph `_unravel`.

Host NumPy, JAX's and TensorFlow's eager ops only, whatever Keras's backend: both
libraries come with the test extra, and no Keras backend code runs.
"""

import numpy as np
import pytest

from kerastrain._backend import _vectorized_mlp_math as math

CASES = [(False, 4, 1), (True, 8, 3)]


def _parameters(batch_norm, columns, depth):
    shape = math.GroupShape(
        input_dim=5, outputs=3, classification=True, depth=depth, width=4, columns=columns,
        activations=("relu",), families=("adam",), schedules=("constant",),
        batch_norm=batch_norm, dropout=False, batch_size=2, members=1)
    rng = np.random.default_rng(0)
    return shape, {key: rng.normal(size=value.shape).astype(np.float32)
                   for key, value in math.parameter_template(shape).items()}


# runs no Keras backend code (NumPy, JAX and TensorFlow called directly): the same on
# every backend
@pytest.mark.backend_independent
@pytest.mark.parametrize("batch_norm,columns,depth", CASES)
def test_ravel_and_unravel_match_jax_ravel_pytree(batch_norm, columns, depth):
    from jax.flatten_util import ravel_pytree

    shape, params = _parameters(batch_norm, columns, depth)
    reference, unravel_reference = ravel_pytree(params)
    flat = math.ravel(params)
    np.testing.assert_array_equal(flat, np.asarray(reference))
    back = math.unravel(shape, flat)
    assert sorted(back) == sorted(params)
    for key, value in unravel_reference(reference).items():
        np.testing.assert_array_equal(back[key], np.asarray(value))


# runs no Keras backend code (TensorFlow's eager ops called directly): the same on every
# backend
@pytest.mark.backend_independent
@pytest.mark.parametrize("batch_norm,columns,depth", CASES)
def test_the_tensorflow_program_reads_the_same_layout(batch_norm, columns, depth):
    from kerastrain._backend._vectorized_mlp_tf import _unravel

    shape, params = _parameters(batch_norm, columns, depth)
    inside = _unravel(shape, math.ravel(params))
    assert sorted(inside) == sorted(params)
    for key, value in params.items():
        np.testing.assert_array_equal(inside[key].numpy(), value)
