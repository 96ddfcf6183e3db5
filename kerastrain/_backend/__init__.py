"""The backend layer: the only part of kerastrain importing tensorflow, jax or torch.

The backend is picked once, from `keras.config.backend()`. Everything here
works on a model's *trainable values* (a list of tensors in the order of
`model.trainable_variables`) so the same primitives serve diagnostics (on the
current weights), second-order and sharpness-aware optimizers (on perturbed
weights inside a compiled train step) and tests.

Public primitives:

- `value_and_grad(model, x, y, loss=None)` -> ``(loss, grads)``
- `hvp(model, x, y, loss, vectors)` -> Hessian-vector products
- `make_value_and_grad(model, loss=None)` / `make_hvp(model, loss=None)` ->
  reusable (compiled) functions of ``(values, ...)``
- `install_loss_aware_train_step(model)`: the per-model train-step hook that
  hands a loss closure to optimizers that need the loss, not only the gradient.
- `float64_scope()`: float64 computation (JAX's 64-bit mode, Keras's float64
  promotion) inside a ``with`` block only; both restored on exit.
- `require_loss_closure(optimizer)` / `evaluate_at(closure, ...)`: what an
  optimizer needing the loss calls inside `apply()` (`_train_step.py`).
- Gradient-statistics pieces (`_statistics.py`): `squared_norm`,
  `record_before_update`, `snapshot`, `assign_where`, `concrete_bool`, so the
  optimizers' recording never asks which backend runs it.
"""

from __future__ import annotations

import contextlib
import importlib

import keras

from kerastrain._backend._float64 import float64_promotion
from kerastrain._backend._loss import check_model, make_loss_fn, trainable_values
from kerastrain._backend._statistics import (
    assign_where,
    concrete_bool,
    record_before_update,
    snapshot,
    squared_norm,
)
from kerastrain._backend._train_step import (
    LossClosure,
    current_loss_closure,
    evaluate_at,
    install_loss_aware_train_step,
    require_loss_closure,
)

__all__ = [
    "LossClosure",
    "assign_where",
    "check_model",
    "concrete_bool",
    "current_loss_closure",
    "evaluate_at",
    "float64_scope",
    "hvp",
    "install_loss_aware_train_step",
    "make_hvp",
    "make_loss_fn",
    "make_value_and_grad",
    "name",
    "record_before_update",
    "require_loss_closure",
    "snapshot",
    "squared_norm",
    "trainable_values",
    "value_and_grad",
]

_MODULES = {"tensorflow": "_tensorflow", "jax": "_jax", "torch": "_torch"}


def _module():
    backend = keras.config.backend()
    if backend not in _MODULES:
        raise ValueError(
            f"kerastrain supports the Keras backends {sorted(_MODULES)}. "
            f"Received: KERAS_BACKEND={backend!r}. Set KERAS_BACKEND to one of them."
        )
    return importlib.import_module(f"kerastrain._backend.{_MODULES[backend]}")


def name():
    """The Keras backend in use: "tensorflow", "jax" or "torch"."""
    return _module().NAME


@contextlib.contextmanager
def float64_scope(enabled=True):
    """Compute in float64 inside the ``with`` block; the process is unchanged after it.

    Inside: JAX's 64-bit mode is on (``jax.enable_x64``, thread-local), and
    Keras's type promotion keeps float64 on JAX and PyTorch instead of mapping
    it to float32. On exit (errors included) both return to what they were,
    so e.g. ``keras.ops.convert_to_tensor(np.ones(2))`` is float32 again on
    JAX. TensorFlow needs neither. Nested scopes are fine. With
    ``enabled=False`` the scope does nothing.

    Example:

    ```python
    with _backend.float64_scope():
        model64 = rebuild_in_float64(model)
        loss, grads = value_and_grad(model64, x, y)
    ```
    """
    if not enabled:
        yield
        return
    with _module().float64_mode(), float64_promotion():
        yield


def _maybe_compile(function, jit):
    return _module().compile_function(function) if jit else function


def make_value_and_grad(model, loss=None, training=False, jit=True):
    """Return ``f(values, x, y, sample_weight=None) -> (loss, grads)``.

    Args:
        model: a built `keras.Model`.
        loss: a Keras loss (object, name or callable); default the compiled loss.
        training: run the model in training mode (dropout on, batch-norm
            batch statistics). Default False: a deterministic loss.
        jit: compile the function (`tf.function` / `jax.jit`; eager on torch).
    """
    loss_fn = make_loss_fn(model, loss, training=training)
    return _maybe_compile(_module().value_and_grad(loss_fn), jit)


def make_hvp(model, loss=None, training=False, jit=True):
    """Return ``f(values, vectors, x, y, sample_weight=None) -> H @ vectors``.

    ``vectors`` is a list shaped like the trainable variables; the result is
    the Hessian of the loss with respect to the trainable weights applied to
    it, as a list of the same shapes. Arguments as in `make_value_and_grad`.
    """
    loss_fn = make_loss_fn(model, loss, training=training)
    return _maybe_compile(_module().hvp(loss_fn), jit)


def value_and_grad(model, x, y, loss=None, sample_weight=None, training=False):
    """Loss and its gradient w.r.t. ``model.trainable_variables`` at the current weights.

    Returns ``(loss, grads)``: a scalar tensor and a list of tensors shaped
    like the trainable variables.
    """
    function = make_value_and_grad(model, loss, training=training, jit=False)
    return function(trainable_values(model), x, y, sample_weight)


def hvp(model, x, y, loss=None, vectors=None, sample_weight=None, training=False):
    """Hessian-vector product of the loss w.r.t. the trainable weights.

    Args:
        vectors: a list shaped like ``model.trainable_variables``.

    Returns a list of tensors shaped like the trainable variables.
    """
    values = trainable_values(model)
    if vectors is None or len(vectors) != len(values):
        raise ValueError(
            "Argument `vectors` must be a list with one tensor per trainable variable "
            f"({len(values)}). Received: vectors of length "
            f"{None if vectors is None else len(vectors)}"
        )
    function = make_hvp(model, loss, training=training, jit=False)
    return function(values, vectors, x, y, sample_weight)
