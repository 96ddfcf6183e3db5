"""`float64_scope()`: float64 computation for the duration of a ``with`` block.

Keras 3 computes float64 faithfully only on TensorFlow. On JAX, 64-bit
arrays need JAX's ``jax_enable_x64`` mode; on JAX and PyTorch, Keras's type
promotion maps float64 to float32 (its private table
``keras.src.backend.common.dtypes.BIT64_TO_BIT32_DTYPE``), so ops such as
``ops.tanh`` of a float64 tensor silently return float32. The diagnostics
analyse a float64 copy of a model; they change both settings only inside
this scope, and both are restored on exit, errors included, so the process
behaves afterwards exactly as before.
"""

from __future__ import annotations

import contextlib

_MISSING = object()


@contextlib.contextmanager
def float64_promotion():
    """Keras's float64 -> float32 promotion rule off; the table restored on exit."""
    from kerastrain import _compat

    table = _compat.bit64_to_bit32_table()
    saved = table.get("float64", _MISSING)
    table["float64"] = "float64"
    try:
        yield
    finally:
        if saved is _MISSING:
            table.pop("float64", None)
        else:
            table["float64"] = saved
