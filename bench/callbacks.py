"""Cost of the standard monitoring set (`kerastrain.callbacks.monitor`) on `fit`.

Wall time per epoch of ``model.fit`` with ``monitor(log_dir, probe)`` at its
default frequencies (scalars and histograms once per epoch, a 256-sample
probe) against a bare ``fit`` of an identical model, interleaved in one
process. On the TensorFlow backend Keras's own
``keras.callbacks.TensorBoard(histogram_freq=1)`` is timed too, for
comparison. Target: ratio <= 1.10.

The model is an MNIST-sized MLP (784-256-128-10, ReLU) trained with Adam on
random data of MNIST's size (60 000 samples, batches of 64); ``--quick`` uses
2 048 samples. Two more candidates split the cost: ``scalars_only`` (gradient
norms, update ratios, learning rate: the optimizer's per-step recording in
``apply()`` plus epoch-end reads) and ``histograms_only`` (weight / gradient /
activation histograms and dead-ReLU detection on the probe, once per epoch,
with a plain optimizer).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import keras
import numpy as np

from bench._harness import interleaved


def _model(seed, monitored=False):
    """The MLP with Adam; ``monitored``: Adam inside `kerastrain.optimizers.monitored`
    (what the statistics callbacks need; they never wrap the optimizer themselves)."""
    from kerastrain.optimizers import monitored as monitor_optimizer

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10),
    ])
    optimizer = keras.optimizers.Adam(1e-3)
    model.compile(optimizer=monitor_optimizer(optimizer) if monitored else optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def run(quick=False):
    from kerastrain.callbacks import (
        ActivationHistograms,
        DeadReLUDetector,
        GradientNormLogger,
        LearningRateLogger,
        UpdateRatioLogger,
        WeightHistograms,
        monitor,
    )

    samples, epochs, repeat = (2048, 1, 3) if quick else (60000, 1, 3)
    batch_size, probe_size = 64, 256
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 784)).astype("float32")
    y = rng.integers(0, 10, size=samples)
    probe = (x[:probe_size], y[:probe_size])
    root = tempfile.mkdtemp(prefix="bench-callbacks-")
    labels = ["bare", "monitor", "scalars_only", "histograms_only"]
    models = {label: _model(0, monitored=label in ("monitor", "scalars_only"))
              for label in labels}
    scalars_dir, histograms_dir = os.path.join(root, "scalars"), os.path.join(root, "histograms")
    callbacks = {
        "bare": [],
        "monitor": monitor(os.path.join(root, "monitor"), probe),
        # the optimizer's per-step recording (monitored Adam) + epoch-end reads
        "scalars_only": [GradientNormLogger(scalars_dir), UpdateRatioLogger(scalars_dir),
                         LearningRateLogger(scalars_dir)],
        # the probe callbacks alone: plain Adam, nothing recorded per step
        "histograms_only": [WeightHistograms(histograms_dir, probe_data=probe),
                            ActivationHistograms(probe, histograms_dir),
                            DeadReLUDetector(probe, histograms_dir)],
    }
    if keras.config.backend() == "tensorflow":
        models["keras_tensorboard"] = _model(0)
        callbacks["keras_tensorboard"] = [keras.callbacks.TensorBoard(
            os.path.join(root, "keras"), histogram_freq=1)]

    def fitter(label):
        def fit():
            models[label].fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0,
                              callbacks=callbacks[label])
        return fit

    try:
        seconds = interleaved({label: fitter(label) for label in models}, repeat=repeat,
                              warmup=1)
        # Process CPU time as well: on a shared machine other processes inflate wall
        # time unevenly between rounds; the process's own CPU time is what the
        # callbacks cost.
        cpu_seconds = interleaved({label: fitter(label) for label in models}, repeat=repeat,
                                  warmup=0, clock=time.process_time)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    per_epoch = {label: value / epochs for label, value in seconds.items()}
    cpu_per_epoch = {label: value / epochs for label, value in cpu_seconds.items()}
    ratios = {f"{label} / bare fit (per epoch)": per_epoch[label] / per_epoch["bare"]
              for label in per_epoch if label != "bare"}
    ratios.update({f"{label} / bare fit (CPU time per epoch)":
                   cpu_per_epoch[label] / cpu_per_epoch["bare"]
                   for label in cpu_per_epoch if label != "bare"})
    return {
        "ratios": ratios,
        "seconds_per_epoch": per_epoch,
        "cpu_seconds_per_epoch": cpu_per_epoch,
        "histograms_seconds_per_epoch": per_epoch["histograms_only"] - per_epoch["bare"],
        "config": {"samples": samples, "batch_size": batch_size, "epochs_per_call": epochs,
                   "repeat": repeat, "probe_size": probe_size,
                   "model": "MLP 784-256-128-10 relu, Adam",
                   "monitor": "monitor(log_dir, (x[:256], y[:256])) at default frequencies"},
        "target": "monitor / bare fit <= 1.10",
    }
