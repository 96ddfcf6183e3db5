"""`_threefry.uniform_at` is JAX's own uniform draw, element by element, bit for bit.

The reference is ``jax.random.uniform`` itself (what Keras's ``Dropout`` draws on
JAX), called directly: JAX comes with the test extra, and no Keras backend code runs.
"""

import numpy as np
import pytest

# runs no Keras backend code (JAX called directly): the same on every backend
pytestmark = pytest.mark.backend_independent


@pytest.mark.parametrize("size", [1, 7, 32 * 256, 64 * 129 + 3])
def test_uniform_at_every_count_equals_jax_uniform(size):
    import jax

    from kerastrain._backend._threefry import uniform_at

    rng = np.random.default_rng(size)
    for _ in range(3):
        key = rng.integers(0, 2 ** 32, size=2, dtype=np.uint32)
        reference = np.asarray(jax.random.uniform(key, (size,), dtype="float32"))
        counts = np.arange(size, dtype=np.uint32)
        np.testing.assert_array_equal(np.asarray(uniform_at(key, counts)), reference)


def test_uniform_at_a_padded_layout_equals_the_true_width_draw():
    """A member of ``units`` units in a ``width``-wide layout: position ``(i, j)`` of its
    ``(batch, units)`` draw (Keras's dropout mask) at counter ``i * units + j``."""
    import jax

    from kerastrain._backend._threefry import uniform_at

    batch, units, width = 5, 3, 8
    key = np.asarray([12345, 678], np.uint32)
    reference = np.asarray(jax.random.uniform(key, (batch, units), dtype="float32"))
    counts = (np.arange(batch)[:, None] * units + np.arange(width)[None, :]).astype(np.uint32)
    drawn = np.asarray(jax.jit(uniform_at)(key, counts))
    np.testing.assert_array_equal(drawn[:, :units], reference)
    assert drawn.shape == (batch, width)
