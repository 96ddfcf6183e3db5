"""The backend layer's overhead: `make_value_and_grad` / `make_hvp` vs hand-written code.

Baseline: what a user would write directly on the backend (a `tf.function`
around a `GradientTape`, or `jax.jit(jax.value_and_grad(...))` over
`model.stateless_call`; eager autograd on torch) for the same MLP and batch.
Reported: kerastrain gradient / hand-written gradient (target ~1.0), and one
Hessian-vector product / one gradient (forward-over-reverse costs ~2-4x).
"""

from __future__ import annotations

import keras
import numpy as np

from bench._harness import interleaved
from kerastrain import _backend


def _model(width, depth, inputs):
    layers = [keras.Input((inputs,))]
    layers += [keras.layers.Dense(width, activation="tanh") for _ in range(depth)]
    layers += [keras.layers.Dense(10)]
    model = keras.Sequential(layers)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _hand_written(model, loss):
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def step(x, y):
            with tf.GradientTape() as tape:
                value = loss(y, model(x, training=False))
            return value, tape.gradient(value, model.trainable_variables)

        return step
    if backend == "jax":
        import jax

        non_trainable = [v.value for v in model.non_trainable_variables]

        def objective(values, x, y):
            prediction, _ = model.stateless_call(values, non_trainable, x, training=False)
            return loss(y, prediction)

        compiled = jax.jit(jax.value_and_grad(objective))
        values = [v.value for v in model.trainable_variables]
        return lambda x, y: compiled(values, x, y)
    import torch

    def step(x, y):
        value = loss(y, model(x, training=False))
        grads = torch.autograd.grad(value, [v.value for v in model.trainable_variables])
        return value, grads

    return step


def _block(result):
    loss = result[0] if isinstance(result, tuple) else result
    np.asarray(keras.ops.convert_to_numpy(loss))


def run(quick=False):
    width, depth, batch = (64, 2, 64) if quick else (512, 4, 256)
    model = _model(width, depth, 784)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, 784)).astype("float32")
    y = rng.integers(0, 10, size=batch)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    ours = _backend.make_value_and_grad(model)
    hvp = _backend.make_hvp(model)
    values = _backend.trainable_values(model)
    vectors = [keras.ops.ones_like(v) for v in values]
    baseline = _hand_written(model, loss)
    times = interleaved(
        {
            "hand-written gradient": lambda: _block(baseline(x, y)),
            "kerastrain gradient": lambda: _block(ours(values, x, y)),
            "kerastrain hvp": lambda: _block((hvp(values, vectors, x, y)[0],)),
        },
        repeat=5 if quick else 15,
        warmup=2,
        number=2 if quick else 5,
    )
    parameters = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    return {
        "parameters": parameters,
        "batch": batch,
        "seconds": times,
        "ratios": {
            "gradient: kerastrain / hand-written": times["kerastrain gradient"]
            / times["hand-written gradient"],
            "hvp / gradient (both kerastrain)": times["kerastrain hvp"]
            / times["kerastrain gradient"],
        },
    }
