"""Host arrays as backend tensors, and the backend's own generator seeding.

kerastrain's random initializers draw on the host with NumPy (the same weights on
every backend, and no random program compiled per weight shape on JAX) and hand the
result to the backend through `host_tensor`: a transfer, not a compile.
"""

from __future__ import annotations

import keras
import numpy as np


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
