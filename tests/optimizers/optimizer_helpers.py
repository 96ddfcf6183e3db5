"""Shared helpers for the optimizer tests: a gradient oracle and step runners.

The gradient at step t is g_t(w) = 0.5·w + n_t with fixed noise n_t, so every
framework (kerastrain, keras, torch, float64 numpy) sees the same gradient
function of its own current weights.
"""

import keras
import numpy as np

SHAPE = (4, 3)
_RNG = np.random.default_rng(1234)
W0 = _RNG.normal(size=SHAPE)
NOISE = _RNG.normal(size=(100,) + SHAPE)


def gradient(w, t):
    """g_t(w) in the dtype of ``w`` (t counts from 0)."""
    return (0.5 * w + NOISE[t]).astype(w.dtype)


def run_keras(optimizer, steps, w0=W0):
    """Apply ``steps`` updates eagerly to one float32 variable; return its value."""
    variable = keras.Variable(np.asarray(w0, "float32"))
    optimizer.build([variable])
    for t in range(steps):
        grad = gradient(keras.ops.convert_to_numpy(variable), t)
        optimizer.apply([keras.ops.convert_to_tensor(grad)], [variable])
    return keras.ops.convert_to_numpy(variable)


def run_torch(factory, steps, w0=W0):
    """Same with a `torch.optim` optimizer in float64; ``factory(params)``."""
    import torch

    parameter = torch.tensor(np.asarray(w0, np.float64), requires_grad=True)
    optimizer = factory([parameter])
    for t in range(steps):
        parameter.grad = torch.tensor(gradient(parameter.detach().numpy(), t))
        optimizer.step()
    return parameter.detach().numpy()


def run_numpy(step_function, steps, w0=W0):
    """``step_function(w, g, t, state) -> w`` in float64 (t counts from 1)."""
    w, state = np.array(w0, np.float64), {}
    for t in range(steps):
        w = step_function(w, gradient(w, t), t + 1, state)
    return w


def linear_model(features, optimizer, jit_compile="auto", model_class=keras.Sequential,
                 prepare=True):
    """A compiled ``features -> 1`` Dense model (bias initialised to ones), MSE loss.

    With ``prepare`` (default), `kerastrain.optimizers.prepare(model)` is
    called after ``compile`` when the optimizer needs the batch's loss (`SAM`,
    `HessianFree`), as users do.
    """
    from kerastrain._backend._train_step import requires_loss_closure
    from kerastrain.optimizers._sam import prepare as prepare_model

    model = model_class([keras.Input((features,)),
                         keras.layers.Dense(1, bias_initializer="ones")])
    model.compile(optimizer=optimizer, loss="mse", jit_compile=jit_compile)
    if prepare and requires_loss_closure(optimizer):
        prepare_model(model)
    return model


def fit_full_batch(model, x, y, steps):
    """``steps`` full-batch steps, in order."""
    model.fit(x, y, batch_size=len(x), epochs=steps, shuffle=False, verbose=0)


def flat_weights(model):
    """A linear model's (kernel, bias) as one float64 vector."""
    kernel, bias = (keras.ops.convert_to_numpy(w).astype(np.float64) for w in model.weights)
    return np.concatenate([kernel[:, 0], bias])


def mse_gradients(x, y, kernel, bias):
    """d/dW and d/db of mean((xW + b - y)^2) for a Dense layer, in float64."""
    x, y, kernel, bias = (np.asarray(a, np.float64) for a in (x, y, kernel, bias))
    residual = x @ kernel + bias - y
    scale = 2.0 / residual.size
    return scale * x.T @ residual, scale * residual.sum(axis=0)
