"""The backend pieces of recording gradient statistics inside `apply()`.

The recording itself (`kerastrain.optimizers._statistics.StatisticsMixin`) is
written in Keras only; the few steps whose cost or correctness depends on how
a backend runs a compiled step are here, one function each, implemented by
``_tensorflow.py``, ``_jax.py`` and ``_torch.py``:

- `squared_norm(value)`: ‖x‖₂² in float32, in the backend's cheapest form.
- `record_before_update()`: True where the statistics must be computed
  *before* the update, from a dry run of it (JAX: a branch reading the old
  weights after the update would make XLA copy the donated weight buffers at
  every step, recording or not; `bench/xla_inplace.py`). Elsewhere the weights
  are read before the update (`snapshot`) and the statistics computed after.
- `snapshot(variables, record)`: the variables' values before the update on
  the steps where ``record`` (a boolean scalar tensor) holds, without making
  the other steps pay for a copy.
- `assign_where(record, targets, compute)`: assign ``compute()`` (a tuple of
  tensors) to the variables ``targets`` where ``record`` holds; ``compute``
  runs only on those steps where the backend can branch. Returns the values the
  targets hold afterwards where `record_before_update()` (the caller orders the
  update after them), else None.
- `concrete_bool(value)`: a boolean scalar as a Python bool when it has a value
  now (eager), None while it is being traced.

None of these is called per element: they run while a train step is traced
(TensorFlow, JAX) or once per step (eager PyTorch).
"""

from __future__ import annotations

from keras import ops

__all__ = ["assign_where", "concrete_bool", "record_before_update", "snapshot",
           "squared_norm"]


def _module():
    from kerastrain._backend import _module as backend_module

    return backend_module()


def squared_norm(value):
    """‖x‖₂² of ``value`` as a float32 scalar."""
    return _module().squared_norm(ops.cast(value, "float32"))


def record_before_update():
    """True where statistics are computed before the update (see the module docstring)."""
    return _module().RECORD_BEFORE_UPDATE


def snapshot(variables, record):
    """The values of ``variables`` before the update, where ``record`` (else placeholders)."""
    return _module().snapshot(variables, record)


def assign_where(record, targets, compute):
    """Where ``record``, assign ``compute()`` to ``targets`` (see the module docstring)."""
    return _module().assign_where(record, targets, compute)


def concrete_bool(value):
    """``value`` as a Python bool when it is concrete (eager), None when traced."""
    return _module().concrete_bool(value)
