"""Update ratios recorded without a copy of the weights, for every transform.

On the chain's fast path the optimizer keeps no copy of the weights from
before the step: TensorFlow and torch record from the updates u it applied,
JAX recomputes u after the step from the slots' new values (`replay`), solving
for the old weights where weight decay added them. The reference is
independent of all that: a twin model trained with ``record_statistics=False``
has its weights read before and after every step, and ‖Δw‖/‖w‖ is computed in
float64 from them; gradient norms come from float64 numpy gradients.
"""

import keras
import numpy as np

from kerastrain import optimizers
from kerastrain.optimizers import transforms as T
from kerastrain.testing import TestCase

STEPS = 6
LEARNING_RATE = 0.05


def _exponential(initial):
    return keras.optimizers.schedules.ExponentialDecay(initial, 2, 0.5)


def _adamw_no_bias_decay(**kwargs):
    optimizer = optimizers.AdamW(LEARNING_RATE, weight_decay=0.5, **kwargs)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    return optimizer


# name: (factory(record_statistics, statistics_every), replayed on JAX)
CASES = {
    "sgd": (lambda **s: optimizers.SGD(LEARNING_RATE, **s), True),
    "sgd_momentum": (lambda **s: optimizers.SGD(LEARNING_RATE, momentum=0.9, **s), True),
    "sgd_nesterov": (lambda **s: optimizers.SGD(LEARNING_RATE, momentum=0.9, nesterov=True,
                                                **s), True),
    "sgd_torch_dampening_decay": (lambda **s: optimizers.SGD(
        LEARNING_RATE, momentum=0.9, dampening=0.3, weight_decay=0.5, convention="torch", **s),
        True),
    "sgd_torch_nesterov_decay": (lambda **s: optimizers.SGD(
        LEARNING_RATE, momentum=0.9, nesterov=True, weight_decay=0.5, convention="torch", **s),
        False),
    "adagrad_reset": (lambda **s: optimizers.Adagrad(0.5, reset_interval=3, **s), True),
    "adagrad_torch_lr_decay": (lambda **s: optimizers.Adagrad(
        0.5, lr_decay=0.1, convention="torch", **s), True),
    "adadelta": (lambda **s: optimizers.Adadelta(1.0, **s), True),
    "adadelta_rho_0": (lambda **s: optimizers.Adadelta(1.0, rho=0.0, **s), True),
    "rmsprop_centered_momentum": (lambda **s: optimizers.RMSprop(
        LEARNING_RATE, momentum=0.5, centered=True, **s), True),
    "rmsprop_torch_decay": (lambda **s: optimizers.RMSprop(
        LEARNING_RATE, weight_decay=0.5, convention="torch", **s), False),
    "adam_amsgrad": (lambda **s: optimizers.Adam(LEARNING_RATE, amsgrad=True, **s), True),
    "adam_scheduled_beta_1": (lambda **s: optimizers.Adam(
        LEARNING_RATE, beta_1=_exponential(0.9), **s), True),
    "adam_torch_decay": (lambda **s: optimizers.Adam(
        LEARNING_RATE, weight_decay=0.5, convention="torch", **s), True),
    "adamw": (lambda **s: optimizers.AdamW(LEARNING_RATE, weight_decay=0.5, **s), True),
    "adamw_torch": (lambda **s: optimizers.AdamW(
        LEARNING_RATE, weight_decay=0.5, convention="torch", **s), True),
    "adamw_bias_excluded": (_adamw_no_bias_decay, True),
    "nadam": (lambda **s: optimizers.Nadam(LEARNING_RATE, **s), True),
    "nadam_torch": (lambda **s: optimizers.Nadam(LEARNING_RATE, convention="torch", **s), True),
    "radam": (lambda **s: optimizers.RAdam(LEARNING_RATE, **s), True),
    "adabelief": (lambda **s: optimizers.AdaBelief(LEARNING_RATE, **s), True),
    "lars": (lambda **s: optimizers.LARS(2.0, **s), False),
    "clipped_chain": (lambda **s: optimizers.Chain(
        [T.ClipByValue(0.2), T.ClipByGlobalNorm(0.5), T.ClipByNorm(0.3), T.Momentum(0.5)],
        LEARNING_RATE, **s), True),
    "adaptive_clip_chain": (lambda **s: optimizers.Chain(
        [T.AdaptiveClip(0.01), T.Momentum(0.5)], LEARNING_RATE, **s), False),
    "decay_then_scaled_momentum": (lambda **s: optimizers.Chain(
        [T.FirstMoment(0.9), T.WeightDecay(0.5), T.ScaleByLearningRate(),
         T.Momentum(_exponential(0.9))], LEARNING_RATE, **s), True),
    "decay_then_rms": (lambda **s: optimizers.Chain(
        [T.WeightDecay(0.5), T.ScaleByRMS(0.9)], LEARNING_RATE, **s), False),
}


def _data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 3)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    return x, y


def _model(optimizer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)),
                              keras.layers.Dense(2, bias_initializer="ones", name="dense")])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _mse_gradients(x, y, kernel, bias):
    residual = x @ kernel + bias - y
    scale = 2.0 / residual.size
    return scale * x.T @ residual, scale * residual.sum(axis=0)


class _Record(keras.callbacks.Callback):
    """Weights (float64) before each step; statistics after it, when asked."""

    def __init__(self, statistics):
        super().__init__()
        self.statistics, self.weights, self.seen = statistics, [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.weights.append([np.asarray(w, np.float64) for w in self.model.get_weights()])

    def on_train_end(self, logs=None):
        self.weights.append([np.asarray(w, np.float64) for w in self.model.get_weights()])

    def on_train_batch_end(self, batch, logs=None):
        if self.statistics:
            stats = self.model.optimizer.gradient_statistics()
            self.seen.append({k: keras.ops.convert_to_numpy(v) for k, v in stats.items()})


class FastPathStatisticsTest(TestCase):
    def test_update_ratios_are_the_applied_updates_for_every_transform(self):
        x, y = _data()
        for name, (factory, replayed) in sorted(CASES.items()):
            with self.subTest(optimizer=name):
                self._check(factory, replayed, x, y)

    def _check(self, factory, replayed, x, y):
        recording = factory(statistics_every=1)
        plain = factory(record_statistics=False)
        if keras.backend.backend() == "jax":
            # Which path is taken is part of the contract: replay where it can.
            self.assertEqual(recording._replayable(), replayed)
        reference, recorder = _Record(False), _Record(True)
        for optimizer, callback in ((plain, reference), (recording, recorder)):
            _model(optimizer).fit(x, y, batch_size=16, epochs=STEPS, shuffle=False, verbose=0,
                                  callbacks=[callback])
        self.assertAllClose(recorder.weights[-1], reference.weights[-1], rtol=1e-6, atol=1e-7)
        for step, seen in enumerate(recorder.seen):
            before, after = reference.weights[step], reference.weights[step + 1]
            norms = [np.linalg.norm(g) for g in _mse_gradients(x, y, *before)]
            ratios = [np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in zip(after, before)]
            self.assertEqual(int(seen["step"]), step + 1)
            self.assertAllClose(seen["gradient_norms"], norms, rtol=1e-5)
            self.assertAllClose(seen["global_norm"], np.linalg.norm(norms), rtol=1e-5)
            self.assertAllClose(seen["update_ratios"], ratios, rtol=2e-4)
