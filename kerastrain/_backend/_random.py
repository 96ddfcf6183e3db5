"""Random initial weights without one XLA compile per weight shape.

On JAX every new shape passed to ``jax.random.normal`` / ``uniform`` compiles
a new program (0.2–0.7 s on a 2-core CPU), so building a model whose layers
have many different widths (an architecture search builds dozens) spends most
of its time compiling random draws. JAX's partitionable threefry (the default
since JAX 0.5) gives element ``i`` of a draw the bits of counter ``i``
whatever the shape, so the first ``n`` elements of a flat draw of any size
``N >= n`` *are* the draw of ``n`` elements, and a draw of shape ``(a, b)`` is
the flat draw of ``a·b`` elements, reshaped: `prefix_draw` draws at a
one of four sizes (one compile per size class and distribution) and slices
on the host. The values are bit-identical to the direct draw (tested). Other
backends (and JAX without partitionable threefry) draw directly. The slice
goes back to the device through `host_tensor` (a transfer, not a compile).
"""

from __future__ import annotations

import math

import keras
import numpy as np

# Size classes, in elements: few (each is one compile per distribution), and a draw
# of 2^22 normals takes ~40 ms on a 2-core CPU. Above the largest, a draw's own time
# dwarfs a compile: draw directly.
_CLASSES = (1 << 12, 1 << 16, 1 << 19, 1 << 22)


def _prefix_property():
    if keras.config.backend() != "jax":
        return False
    import jax

    return bool(jax.config.jax_threefry_partitionable)


def prefix_draw(draw, shape):
    """``draw(shape)`` (a keras.random call with an int seed), compiled once per size class.

    ``draw`` must be elementwise in the random bits (normal, uniform, truncated
    normal, times/plus scalars), which every keras.random distribution used for
    initial weights is.
    """
    shape = tuple(int(dim) for dim in shape)
    count = math.prod(shape)
    if count == 0 or count > _CLASSES[-1] or not _prefix_property():
        return draw(shape)
    size = next(size for size in _CLASSES if count <= size)
    flat = np.asarray(draw((size,)))
    return host_tensor(flat[:count].reshape(shape), flat.dtype)


def host_tensor(array, dtype=None):
    """A NumPy ``array`` as a backend tensor of ``dtype`` (default floatx).

    On JAX the cast happens in NumPy and the array is transferred with
    ``jax.device_put``: ``keras.ops.convert_to_tensor`` (``jnp.asarray``) compiles
    an identity or cast program per shape on JAX >= 0.10 (20-60 ms each on a
    2-core CPU), which an architecture search pays for every new layer shape.
    """
    dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
    if keras.config.backend() != "jax" or dtype == "bfloat16":
        return keras.ops.convert_to_tensor(array, dtype=dtype)
    import jax

    return jax.device_put(np.asarray(array, dtype=dtype))


def seed_framework(seed):
    """Seed the backend framework's own generator where Keras's ``set_random_seed`` does:
    torch's (``torch.manual_seed``) on the torch backend; JAX has no global state."""
    if keras.config.backend() == "torch":
        import torch

        torch.manual_seed(seed)
