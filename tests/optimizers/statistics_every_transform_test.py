"""Recorded statistics against the updates actually applied, for every transform.

The optimizer never keeps a copy of the weights from before the step on its
fast paths: TensorFlow and torch record from the updates u the chain applies
(old weights = w + u), JAX from a dry run of the update made before it. The
reference is independent of both: a twin model trained with
``record_statistics=False`` has its weights read before and after every step,
and ‖Δw‖/‖w‖ is computed in float64 from them; gradient norms come from float64
numpy gradients. The cases cover every transform, every preset's options, the
wrappers, and base-optimizer features that leave the fast path.
"""

import keras
import numpy as np
from optimizer_helpers import mse_gradients

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


# name: factory(record_statistics=..., statistics_every=...)
CASES = {
    "sgd": lambda **s: optimizers.SGD(LEARNING_RATE, **s),
    "sgd_momentum": lambda **s: optimizers.SGD(LEARNING_RATE, momentum=0.9, **s),
    "sgd_nesterov": lambda **s: optimizers.SGD(LEARNING_RATE, momentum=0.9, nesterov=True, **s),
    "sgd_torch_dampening_decay": lambda **s: optimizers.SGD(
        LEARNING_RATE, momentum=0.9, dampening=0.3, weight_decay=0.5, convention="torch", **s),
    "sgd_torch_nesterov_decay": lambda **s: optimizers.SGD(
        LEARNING_RATE, momentum=0.9, nesterov=True, weight_decay=0.5, convention="torch", **s),
    "adagrad_reset": lambda **s: optimizers.Adagrad(0.5, reset_interval=3, **s),
    "adagrad_torch_lr_decay": lambda **s: optimizers.Adagrad(
        0.5, lr_decay=0.1, convention="torch", **s),
    "adadelta": lambda **s: optimizers.Adadelta(1.0, **s),
    "rmsprop_centered_momentum": lambda **s: optimizers.RMSprop(
        LEARNING_RATE, momentum=0.5, centered=True, **s),
    "rmsprop_torch_decay": lambda **s: optimizers.RMSprop(
        LEARNING_RATE, weight_decay=0.5, convention="torch", **s),
    "adam_amsgrad": lambda **s: optimizers.Adam(LEARNING_RATE, amsgrad=True, **s),
    "adam_scheduled_beta_1": lambda **s: optimizers.Adam(
        LEARNING_RATE, beta_1=_exponential(0.9), **s),
    "adam_torch_decay": lambda **s: optimizers.Adam(
        LEARNING_RATE, weight_decay=0.5, convention="torch", **s),
    "adamw": lambda **s: optimizers.AdamW(LEARNING_RATE, weight_decay=0.5, **s),
    "adamw_torch": lambda **s: optimizers.AdamW(
        LEARNING_RATE, weight_decay=0.5, convention="torch", **s),
    "adamw_bias_excluded": _adamw_no_bias_decay,
    "nadam": lambda **s: optimizers.Nadam(LEARNING_RATE, **s),
    "nadam_torch": lambda **s: optimizers.Nadam(LEARNING_RATE, convention="torch", **s),
    "radam": lambda **s: optimizers.RAdam(LEARNING_RATE, **s),
    "adabelief": lambda **s: optimizers.AdaBelief(LEARNING_RATE, **s),
    "lars": lambda **s: optimizers.LARS(2.0, **s),
    "clipping_chain": lambda **s: optimizers.Chain(
        [T.ClipByValue(0.2), T.ClipByGlobalNorm(0.5), T.ClipByNorm(0.3), T.Momentum(0.5)],
        LEARNING_RATE, **s),
    "adaptive_clip_chain": lambda **s: optimizers.Chain(
        [T.AdaptiveClip(0.01), T.Momentum(0.5)], LEARNING_RATE, **s),
    "decay_then_scheduled_momentum": lambda **s: optimizers.Chain(
        [T.FirstMoment(0.9), T.WeightDecay(0.5), T.ScaleByLearningRate(),
         T.Momentum(_exponential(0.9))], LEARNING_RATE, **s),
    # Base-optimizer features: the update is more than the chain's output.
    "adam_base_clipnorm_weight_decay": lambda **s: optimizers.Adam(
        LEARNING_RATE, clipnorm=0.1, weight_decay=0.5, **s),
    "sgd_gradient_accumulation": lambda **s: optimizers.SGD(
        LEARNING_RATE, momentum=0.9, gradient_accumulation_steps=2, **s),
    "sgd_ema": lambda **s: optimizers.SGD(LEARNING_RATE, momentum=0.9, use_ema=True,
                                          ema_overwrite_frequency=2, **s),
    # Wrappers.
    "lookahead": lambda **s: optimizers.Lookahead(
        optimizers.Adam(LEARNING_RATE, record_statistics=False), sync_period=2, **s),
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


class EveryTransformStatisticsTest(TestCase):
    def test_update_ratios_are_the_applied_updates_for_every_transform(self):
        x, y = _data()
        for name, factory in sorted(CASES.items()):
            with self.subTest(optimizer=name):
                self._check(factory(statistics_every=1), factory(record_statistics=False),
                            x, y)

    def test_monitored_keras_optimizers(self):
        x, y = _data()
        for name in ("SGD", "Adam", "Lion", "Adafactor"):
            with self.subTest(optimizer=name):
                make = getattr(keras.optimizers, name)
                self._check(optimizers.monitored(make(LEARNING_RATE), statistics_every=1),
                            make(LEARNING_RATE), x, y)

    def _check(self, recording, plain, x, y):
        reference, recorder = _Record(False), _Record(True)
        for optimizer, callback in ((plain, reference), (recording, recorder)):
            _model(optimizer).fit(x, y, batch_size=16, epochs=STEPS, shuffle=False, verbose=0,
                                  callbacks=[callback])
        self.assertAllClose(recorder.weights[-1], reference.weights[-1], rtol=1e-6, atol=1e-7)
        for step, seen in enumerate(recorder.seen):
            before, after = reference.weights[step], reference.weights[step + 1]
            norms = [np.linalg.norm(g) for g in mse_gradients(x, y, *before)]
            ratios = [np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in zip(after, before)]
            # With gradient accumulation the step count (Keras's `iterations`) counts
            # updates: every micro-batch records, under the update it accumulates into.
            micro_batches = getattr(recording, "gradient_accumulation_steps", None) or 1
            self.assertEqual(int(seen["step"]), step // micro_batches + 1)
            self.assertAllClose(seen["gradient_norms"], norms, rtol=1e-5)
            self.assertAllClose(seen["global_norm"], np.linalg.norm(norms), rtol=1e-5)
            self.assertAllClose(seen["update_ratios"], ratios, rtol=2e-4)
