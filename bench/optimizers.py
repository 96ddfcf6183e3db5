"""kerastrain presets vs the Keras built-ins, and the cost of gradient statistics.

Two compiled train steps (``model.train_on_batch``), each on ~1M float32
parameters, timed interleaved in one process:

- ``mlp``: a 512-1024-512-10 MLP (1.05M parameters), batch 32 and 256, MSE:
  a real training step (forward + backward + optimizer).
- ``update``: the same parameter shapes behind a linear objective, so the
  backward pass is trivial and the optimizer update dominates the step. Its
  gradients are a broadcast constant, which XLA (JAX) fuses into the update
  and never writes to memory unless something else reads them: the recording
  branch reads them (for ‖g‖), so there the statistics cost a write of every
  gradient per step, which a real model's gradients (outputs of matrix
  products, in memory anyway) do not. The ``mlp`` rows are the training steps.

Ratios reported (lower is better, 1.0 = as fast as Keras), from wall time
(``ratios``) and from process CPU time (``cpu_time_ratios``):

- ``<workload>/<Preset>``: kerastrain preset with ``record_statistics=False``
  over ``keras.optimizers.<Preset>`` (target <= 1.10);
- ``<workload>/<Preset>+stats``: with statistics recorded (the default:
  the first step and every 20th);
- ``<workload>/statistics_overhead/<Preset>``: default stats over no-stats
  (target <= 1.05);
- ``<workload>/statistics_every_step_overhead/<Preset>``: ``statistics_every=1``
  over no-stats (the cost of one recording: three reductions per variable);
- ``<workload>/monitored(keras Adam)``: `monitored(keras Adam)` over keras Adam.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from bench._harness import interleaved

PRESETS = ["SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "Nadam"]


@keras.saving.register_keras_serializable(package="kerastrain_bench")
class _LinearObjective(keras.layers.Layer):
    """Holds the MLP's parameter shapes; outputs Σ_i <w_i, c_i> (cheap backward)."""

    def build(self, input_shape):
        shapes = [(512, 1024), (1024,), (1024, 512), (512,), (512, 10), (10,)]
        self.ws = [self.add_weight(shape=s, initializer="glorot_uniform" if len(s) == 2
                                   else "zeros") for s in shapes]

    def call(self, x):
        total = 0.0
        for w in self.ws:
            total = total + keras.ops.sum(w) * 1e-3
        return keras.ops.zeros_like(x[:, :1]) + total


def _model(workload):
    if workload == "mlp":
        layers = [keras.layers.Dense(1024, activation="relu"),
                  keras.layers.Dense(512, activation="relu"), keras.layers.Dense(10)]
    else:
        layers = [_LinearObjective()]
    return keras.Sequential([keras.Input((512,)), *layers])


def _optimizer(name, kind):
    from kerastrain import optimizers

    if kind == "keras":
        return getattr(keras.optimizers, name)()
    if kind == "monitored":
        return optimizers.monitored(getattr(keras.optimizers, name)())
    if kind == "every_step":
        return getattr(optimizers, name)(statistics_every=1)
    return getattr(optimizers, name)(record_statistics=kind == "stats")


def _step_function(workload, optimizer, batch):
    keras.utils.set_random_seed(0)
    model = _model(workload)
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(0).normal(size=(batch, 512)).astype("float32")
    y = np.zeros((batch, 10 if workload == "mlp" else 1), "float32")
    model.train_on_batch(x, y)  # build + compile

    def step():
        model.train_on_batch(x, y)

    return step, model.count_params()


WORKLOADS = [("mlp", 32), ("mlp", 256), ("update", 32)]


def run(quick=False):
    repeat, number = (3, 5) if quick else (7, 15)
    presets = ["SGD", "Adam"] if quick else PRESETS
    ratios, seconds, cpu_ratios, params = {}, {}, {}, {}
    for workload, batch in WORKLOADS:
        label = f"{workload}@{batch}"
        for name in presets:
            candidates = {}
            for kind in ("keras", "nostats", "stats", "every_step"):
                candidates[kind], params[workload] = _step_function(
                    workload, _optimizer(name, kind), batch)
            if name == "Adam":
                candidates["monitored"], _ = _step_function(
                    workload, _optimizer(name, "monitored"), batch)
            for function in candidates.values():
                function()
            for table, timing in (
                (ratios, interleaved(candidates, repeat=repeat, warmup=1, number=number)),
                (cpu_ratios, interleaved(candidates, repeat=repeat, warmup=0, number=number,
                                         clock=time.process_time)),
            ):
                if table is ratios:
                    seconds[f"{label}/{name}"] = timing
                table[f"{label}/{name}"] = timing["nostats"] / timing["keras"]
                table[f"{label}/{name}+stats"] = timing["stats"] / timing["keras"]
                table[f"{label}/statistics_overhead/{name}"] = timing["stats"] / timing["nostats"]
                table[f"{label}/statistics_every_step_overhead/{name}"] = (
                    timing["every_step"] / timing["nostats"])
                if "monitored" in timing:
                    table[f"{label}/monitored(keras Adam)"] = timing["monitored"] / timing["keras"]
    return {"ratios": ratios, "cpu_time_ratios": cpu_ratios, "seconds_per_step": seconds,
            "parameters": params, "quick": quick,
            "note": "wall-time ratios (ratios) and process-CPU-time ratios on a shared CPU"}
