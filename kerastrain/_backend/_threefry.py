"""Chosen elements of JAX's uniform draw, computed where they are needed (no full draw).

The vectorized program's dropout must draw exactly the masks a member's Keras
``Dropout`` draws on JAX: ``jax.random.uniform(key, (batch, units))`` at the
member's true width ``units``, while the program works in a padded
``(batch, width)`` layout. Drawing ``batch * width`` values and gathering positions
``i * units + j`` was a fifth of a digits group's epoch on the 2-core CPU: JAX's CPU
lowering of the Threefry hash is a rolled five-iteration loop (each iteration writes
its arrays out), and the gather is one more pass.

With JAX's partitionable Threefry (``jax_threefry_partitionable``, the default since
JAX 0.5) element ``k`` of a draw depends on ``k`` alone: its bits are
``Threefry-2x32(key, (0, k))``'s two words XOR-ed. `uniform_at` computes that hash
for the wanted counters directly, unrolled, in ``jax.numpy``: one elementwise
expression XLA fuses with the mask and the scaling. Bit for bit
``jax.random.uniform(key, (n,))[counts]`` under that flag (tested); with the flag off
JAX's draw of ``(batch, units)`` is not a slice of any flat draw, and neither the
gather nor this reproduces Keras's masks.

Threefry-2x32 with 20 rounds: Salmon et al., "Parallel random numbers: as easy as
1, 2, 3" (SC 2011), Random123's rotation constants and key schedule, as JAX uses them.
"""

from __future__ import annotations

import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)  # Threefish's key-schedule constant
_ONE = np.uint32(0x3F800000)  # float32 1.0's bits: 23 random mantissa bits -> [1, 2)
_MANTISSA_SHIFT = np.uint32(32 - 23)


def _rotate_left(value, bits):
    return (value << np.uint32(bits)) | (value >> np.uint32(32 - bits))


def threefry_2x32(key, high, low):
    """The Threefry-2x32 hash (20 rounds) of the counter words ``(high, low)`` (uint32)."""
    k0, k1 = key[0], key[1]
    schedule = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0, x1 = high + k0, low + k1
    for block in range(5):
        for rotation in _ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = x0 ^ _rotate_left(x1, rotation)
        x0 = x0 + schedule[(block + 1) % 3]
        x1 = x1 + schedule[(block + 2) % 3] + np.uint32(block + 1)
    return x0, x1


def uniform_at(key, counts):
    """``jax.random.uniform(key, (n,), float32)[counts]`` for uint32 ``counts`` < ``n``.

    ``key``: a raw Threefry key (``uint32[2]``, what Keras's JAX seed generators hold).
    """
    import jax
    import jax.numpy as jnp

    counts = jnp.asarray(counts, jnp.uint32)
    x0, x1 = threefry_2x32(jnp.asarray(key, jnp.uint32), jnp.zeros_like(counts), counts)
    bits = x0 ^ x1
    floats = jax.lax.bitcast_convert_type((bits >> _MANTISSA_SHIFT) | _ONE, jnp.float32)
    return floats - jnp.float32(1.0)
