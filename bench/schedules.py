"""Cost of kerastrain schedules inside `fit`, against Keras's built-in schedule.

Process CPU time per epoch of ``model.fit`` (SGD + momentum on a small MLP,
2 048 random samples of 32 features, batches of 32: 64 steps per epoch; quick:
512 samples) with the learning rate given as: a float (``constant``), Keras's
``CosineDecayRestarts`` (the baseline: the built-in closest to SGDR), and
kerastrain's ``SGDR``, ``OneCycle``, ``Warmup(SGDR)`` and a three-part
``Sequence``. Interleaved in one process; CPU time because the machine may be
shared. Target: every kerastrain schedule within 1.05x of the Keras baseline.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from bench._harness import interleaved


def _candidates(steps):
    from kerastrain import schedules as ks

    return {
        "constant": lambda: 0.05,
        "keras CosineDecayRestarts": lambda: keras.optimizers.schedules.CosineDecayRestarts(
            0.05, steps),
        "SGDR": lambda: ks.SGDR(0.05, steps),
        "OneCycle": lambda: ks.OneCycle(0.05, 10 * steps),
        "Warmup(SGDR)": lambda: ks.Warmup(ks.SGDR(0.05, steps), steps // 4),
        "Sequence[Linear, SGDR, Constant]": lambda: ks.Sequence(
            [ks.LinearDecay(0.005, 0.05, steps // 4), ks.SGDR(0.05, steps), 0.001],
            boundaries=[steps // 4, 5 * steps]),
    }


def _fit_function(make_rate, x, y):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(64, "relu"),
                              keras.layers.Dense(64, "relu"), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.SGD(make_rate(), momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)  # compile outside the timing
    return lambda: model.fit(x, y, batch_size=32, epochs=1, verbose=0)


def run(quick=False):
    samples = 512 if quick else 2048
    repeat = 3 if quick else 9
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 32)).astype("float32")
    y = rng.integers(0, 10, size=(samples,))
    steps = samples // 32
    functions = {label: _fit_function(make, x, y) for label, make in _candidates(steps).items()}
    median = interleaved(functions, repeat=repeat, warmup=0, clock=time.process_time)
    baseline = median["keras CosineDecayRestarts"]
    ratios = {f"{label} / keras CosineDecayRestarts": value / baseline
              for label, value in median.items() if label != "keras CosineDecayRestarts"}
    return {"ratios": ratios, "cpu_seconds_per_epoch": median, "samples": samples,
            "steps_per_epoch": steps, "repeat": repeat}
