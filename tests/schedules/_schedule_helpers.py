"""Helpers shared by the schedule tests (a unique module name: tests share sys.path)."""

import keras
import numpy as np

from kerastrain.schedules import values

STEPS = np.arange(1200)  # >= 1000 steps for every reference comparison


def evaluate(schedule, steps=STEPS):
    """The schedule at ``steps`` as float64 numpy.

    Schedules are element-wise, so steps inside ``STEPS`` are read from one
    vectorized call over ``STEPS``: one array shape for every test, which
    spares JAX's eager mode a compilation per primitive and per new shape.
    """
    steps = np.asarray(steps)
    if steps.ndim == 1 and steps.size and np.issubdtype(steps.dtype, np.integer) \
            and steps.min() >= 0 and steps.max() < len(STEPS):
        return values(schedule, STEPS)[steps]
    return values(schedule, steps)


def assert_matches(actual, expected, rtol=1e-6, atol=0.0, scale=None):
    """``actual`` equals the float64 ``expected`` to ``rtol`` (float32 precision off TF).

    On JAX and torch, Keras computes unary ops (cos, exp, log, floor, power)
    in float32 even with floatx="float64" (keras/src/backend/common/dtypes.py
    maps 64-bit result types to 32-bit unless the backend is TensorFlow), so
    there the comparison is at float32 precision: rtol 1e-5 and an absolute
    1e-7 of the curve's scale (``scale``, default the largest expected value).
    TensorFlow is held to the float64 ``rtol``.
    """
    expected = np.asarray(expected, dtype=np.float64)
    if keras.config.backend() != "tensorflow":
        rtol = max(rtol, 1e-5)
        scale = float(np.max(np.abs(expected), initial=0.0)) if scale is None else scale
        atol = max(atol, 1e-7 * scale)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def torch_lrs(make_scheduler, steps, learning_rate=1.0, momentum=0.9, optimizer="sgd"):
    """Learning rates (and momenta) PyTorch's scheduler sets at steps 0 .. steps - 1."""
    import torch

    parameter = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    if optimizer == "adam":
        torch_optimizer = torch.optim.Adam([parameter], lr=learning_rate)
        key, index = "betas", 0
    else:
        torch_optimizer = torch.optim.SGD([parameter], lr=learning_rate, momentum=momentum)
        key, index = "momentum", None
    scheduler = make_scheduler(torch_optimizer)
    rates, momenta = [], []
    for _ in range(steps):
        group = torch_optimizer.param_groups[0]
        rates.append(group["lr"])
        momenta.append(group[key] if index is None else group[key][index])
        torch_optimizer.step()
        scheduler.step()
    return np.array(rates), np.array(momenta)


def keras_values(keras_schedule, steps):
    """A Keras built-in schedule step by step (jitted on JAX: its `ops.cond` is slow eagerly)."""
    function = keras_schedule
    if keras.config.backend() == "jax":
        import jax

        function = jax.jit(keras_schedule)
    return np.array([float(keras.ops.convert_to_numpy(function(int(t)))) for t in steps])
