"""Sanity checks before training (cs231n, the tricks list): initial loss, overfit, dead units."""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from kerastrain import _compat, _validation
from kerastrain.diagnostics import _checks, _plotting, _rebuild
from kerastrain.diagnostics._lr_range import fresh_optimizer

_CLASSIFICATION_LOSSES = {"sparse_categorical_crossentropy", "categorical_crossentropy",
                          "SparseCategoricalCrossentropy", "CategoricalCrossentropy"}
_REGULARIZER_KEYS = {
    "kernel_regularizer", "bias_regularizer", "activity_regularizer",
    "beta_regularizer", "gamma_regularizer", "depthwise_regularizer",
    "pointwise_regularizer", "recurrent_regularizer", "embeddings_regularizer",
}
_DEAD = {"relu", "relu6"}
_SATURATING = {"tanh": lambda v: np.abs(v) > 0.99,
               "sigmoid": lambda v: (v < 0.01) | (v > 0.99),
               "hard_sigmoid": lambda v: (v <= 0.0) | (v >= 1.0)}


@dataclasses.dataclass(frozen=True)
class LayerActivity:
    """One activation layer at the current weights.

    ``dead_fraction``: units (last axis) never positive on the batch (ReLU);
    ``saturated_fraction``: outputs in the flat tails (tanh |y| > 0.99,
    sigmoid y < 0.01 or > 0.99).
    """

    layer: str
    activation: str
    dead_fraction: float
    saturated_fraction: float
    flagged: bool


@dataclasses.dataclass(frozen=True, eq=False)
class SanityReport:
    """The three checks in one report; ``passed`` when none failed."""

    initial_loss: float
    expected_initial_loss: float | None
    initial_loss_ok: bool | None
    overfit_losses: np.ndarray
    overfit_target: float
    overfit_passed: bool
    layers: tuple
    notes: tuple

    @property
    def passed(self):
        return (self.initial_loss_ok is not False and self.overfit_passed
                and not any(layer.flagged for layer in self.layers))

    def __str__(self):
        lines = ["sanity check: " + ("passed" if self.passed else "PROBLEMS FOUND")]
        if self.expected_initial_loss is None:
            lines.append(f"  initial loss {self.initial_loss:.4g} (not softmax classification)")
        else:
            verdict = "ok" if self.initial_loss_ok else "UNEXPECTED"
            lines.append(f"  initial loss {self.initial_loss:.4g} vs ln(C) = "
                         f"{self.expected_initial_loss:.4g}: {verdict}")
        verdict = "ok" if self.overfit_passed else "FAILED"
        lines.append(f"  overfit {len(self.overfit_losses)} steps: loss "
                     f"{self.overfit_losses[0]:.4g} -> {self.overfit_losses[-1]:.4g} "
                     f"(target {self.overfit_target:.3g}): {verdict}")
        for layer in self.layers:
            mark = "  FLAGGED" if layer.flagged else ""
            lines.append(f"  {layer.layer:<30s} {layer.activation:<8s} dead "
                         f"{layer.dead_fraction:5.1%}  saturated {layer.saturated_fraction:5.1%}"
                         f"{mark}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def plot(self):
        """The overfitting curve and the per-layer dead / saturated fractions."""
        figure = _plotting.new_figure(figsize=(10, 4))
        left, right = figure.subplots(1, 2)
        left.semilogy(np.maximum(self.overfit_losses, 1e-12))
        left.axhline(self.overfit_target, color="gray", linestyle="--", label="target")
        left.set(xlabel="step", ylabel="loss", title="overfit a tiny subset")
        left.legend()
        names = [layer.layer for layer in self.layers]
        positions = np.arange(len(names))
        right.barh(positions - 0.2, [layer.dead_fraction for layer in self.layers], 0.4,
                   label="dead units")
        right.barh(positions + 0.2, [layer.saturated_fraction for layer in self.layers], 0.4,
                   label="saturated outputs")
        right.set_yticks(positions, names)
        right.set(xlim=(0, 1), xlabel="fraction", title="activations at these weights")
        right.legend(fontsize=8)
        figure.tight_layout()
        return figure


def _loss_name(loss):
    return loss if isinstance(loss, str) else type(loss).__name__


def _strip_regularization(config):
    """Config with regularizers removed and dropout rates set to 0."""
    if isinstance(config, list):
        return [_strip_regularization(item) for item in config]
    if not isinstance(config, dict):
        return config
    result = {}
    for key, value in config.items():
        if key in _REGULARIZER_KEYS:
            result[key] = None
        else:
            result[key] = _strip_regularization(value)
    if "Dropout" in str(result.get("class_name", "")) and isinstance(result.get("config"), dict):
        result["config"] = {**result["config"], "rate": 0.0}
    return result


def initial_loss(model, x, y):
    """``(data loss, ln C or None, C or None)`` at the current weights, no regularization."""
    loss = model.loss
    function = loss if isinstance(loss, keras.losses.Loss) else keras.losses.get(loss)
    predictions = model.predict(x, verbose=0, batch_size=256)
    value = float(np.mean(keras.ops.convert_to_numpy(function(y, predictions))))
    if _loss_name(loss) in _CLASSIFICATION_LOSSES:
        classes = int(predictions.shape[-1])
        return value, math.log(classes), classes
    return value, None, None


class _Recorder(keras.callbacks.Callback):
    """Records each epoch's loss (one full batch per epoch) and stops at the target."""

    def __init__(self, target):
        super().__init__()
        self.target, self.losses = target, []

    def on_epoch_end(self, epoch, logs=None):
        loss = float(logs["loss"])
        self.losses.append(loss)
        if not math.isfinite(loss) or loss <= self.target:
            self.model.stop_training = True


def overfit(model, x, y, max_steps, target):
    """Full-batch steps on a regularization-free copy; the per-step losses.

    One epoch is one full batch, so each epoch's logged loss is exactly that
    step's loss (no running mean across batches).
    """
    clone = _rebuild.rebuild(model, _strip_regularization)
    clone.compile(optimizer=fresh_optimizer(model), loss=model.loss)
    recorder = _Recorder(target)
    clone.fit(x, y, batch_size=len(x), epochs=max_steps, shuffle=False, verbose=0,
              callbacks=[recorder])
    return np.array(recorder.losses)


def _activation_name(layer):
    activation = getattr(layer, "activation", None)
    if activation is None and type(layer).__name__ == "ReLU":
        return "relu"
    return getattr(activation, "__name__", None)


def layer_activity(model, x, dead_threshold, saturation_threshold):
    """A `LayerActivity` per ReLU / tanh / sigmoid layer (Functional and Sequential models)."""
    candidates = [layer for layer in _compat.flatten_layers(model, include_self=False)
                  if _activation_name(layer) in _DEAD | set(_SATURATING)]
    if not candidates:
        return (), ()
    try:
        probe = keras.Model(model.inputs, [layer.output for layer in candidates])
    except (AttributeError, ValueError) as error:
        return (), (f"per-layer activations need a Functional or Sequential model ({error})",)
    outputs = probe.predict(x, verbose=0, batch_size=256)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    result = []
    for layer, values in zip(candidates, outputs):
        name = _activation_name(layer)
        values = np.asarray(values, dtype=np.float64)
        units = values.reshape(-1, values.shape[-1])
        dead = float(np.mean(np.all(units <= 0, axis=0))) if name in _DEAD else 0.0
        saturated = float(np.mean(_SATURATING[name](values))) if name in _SATURATING else 0.0
        flagged = dead > dead_threshold or saturated > saturation_threshold
        result.append(LayerActivity(layer.name, name, dead, saturated, flagged))
    return tuple(result), ()


def sanity_check(model, x, y, num_samples=20, max_steps=500, target_loss=None,
                 initial_loss_tolerance=0.25, dead_threshold=0.5, saturation_threshold=0.5,
                 seed=None):
    """The chapter's checks before a long run, in one report.

    1. Initial loss: for softmax classification (categorical cross-entropy)
       with C classes, a freshly initialized model should score about ln(C)
       (cs231n); flagged when off by more than ``initial_loss_tolerance * ln C``.
       Data loss only, no regularization.
    2. Overfit a tiny subset: ``num_samples`` examples, full-batch steps of a
       copy of the model with regularizers removed and dropout rates set to 0,
       with a fresh copy of the model's optimizer, until the loss is at most
       ``target_loss`` (default 1% of its initial value) or ``max_steps``.
    3. Dead and saturated layers at the current weights (run it at init):
       ReLU units never active on ``x``, tanh/sigmoid outputs in their flat
       tails; a layer is flagged above ``dead_threshold`` /
       ``saturation_threshold``.

    The model's own weights and optimizer are never touched.

    Args:
        model, x, y: a compiled model and training data.
        num_samples: subset size for the overfitting test. Default 20.
        max_steps: Default 500. target_loss: Default None (1% of the initial loss).
        initial_loss_tolerance: relative tolerance around ln(C). Default 0.25.
        dead_threshold, saturation_threshold: flagging thresholds. Default 0.5.
        seed: seed choosing the subset (default: the first ``num_samples``).

    Example:
        >>> print(sanity_check(model, x_train, y_train))

    Reference: cs231n, "Neural Networks Part 3: Before learning: sanity
    checks"; the chapter's debugging list ("make it overfit a small set first").
    """
    _checks.check_compiled_model(model)
    x, y = _checks.check_data(x, y)
    num_samples = _validation.check_integer("num_samples", num_samples, minimum=1)
    max_steps = _validation.check_integer("max_steps", max_steps, minimum=1)
    if target_loss is not None:
        _validation.check_positive("target_loss", target_loss, allow_zero=True)
    _validation.check_positive("initial_loss_tolerance", initial_loss_tolerance)
    _validation.check_in_range("dead_threshold", dead_threshold, 0.0, 1.0)
    _validation.check_in_range("saturation_threshold", saturation_threshold, 0.0, 1.0)
    sample = slice(0, num_samples) if seed is None else np.random.default_rng(
        _validation.check_integer("seed", seed, minimum=0)).permutation(len(x))[:num_samples]
    probe = slice(0, 512)
    value, expected, _ = initial_loss(model, x[probe], y[probe])
    ok = None if expected is None else abs(value - expected) <= initial_loss_tolerance * expected
    subset_x, subset_y = x[sample], y[sample]
    start_loss, _, _ = initial_loss(model, subset_x, subset_y)
    target = 0.01 * start_loss if target_loss is None else float(target_loss)
    losses = overfit(model, subset_x, subset_y, max_steps, target)
    layers, notes = layer_activity(model, x[probe], dead_threshold, saturation_threshold)
    passed = bool(np.isfinite(losses[-1]) and losses[-1] <= target)
    if not passed:
        notes = (*notes, "could not overfit: raise the learning rate or max_steps, check the "
                 "labels and the loss, or the model may be too small")
    return SanityReport(value, expected, ok, losses, target, passed, layers, notes)
