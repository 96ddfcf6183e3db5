"""The learning-rate range test (Smith 2017) with per-batch losses."""

from __future__ import annotations

import dataclasses
import math
import warnings

import keras
import numpy as np

from kerastrain import _backend, _validation
from kerastrain.diagnostics import _checks, _plotting


@dataclasses.dataclass(frozen=True, eq=False)
class LRRangeResult:
    """The sweep and the learning rates it suggests.

    Attributes:
        learning_rates, losses: per step (the loss of the batch *before* its
            update, not Keras's running mean), ``smoothed_losses`` their
            bias-corrected EMA.
        steepest: learning rate where the smoothed loss falls fastest (per log lr).
        valley: fastai's "valley": two thirds of the way down the longest
            decreasing stretch of the smoothed curve.
        minimum_over_10: the learning rate of the lowest smoothed loss, divided by 10.
        divergence: the learning rate at which the run stopped (loss above
            ``divergence_threshold`` x best, or not finite); None if it never did.
        stop_reason: why the sweep ended.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    steepest: float | None
    valley: float | None
    minimum_over_10: float | None
    divergence: float | None
    stop_reason: str

    @property
    def suggestion(self):
        """The recommended learning rate: ``valley`` (fastai's default since 2.5)."""
        return self.valley

    @property
    def suggestions(self):
        """``{name: learning rate}`` for every suggestion that exists."""
        named = {"steepest": self.steepest, "valley": self.valley,
                 "minimum/10": self.minimum_over_10, "divergence": self.divergence}
        return {name: value for name, value in named.items() if value is not None}

    def __str__(self):
        lines = [f"learning-rate range test: {len(self.losses)} steps from "
                 f"{self.learning_rates[0]:.3g} to {self.learning_rates[-1]:.3g}; "
                 f"{self.stop_reason}"]
        if not self.suggestions:
            lines.append("  no suggestion: too few finite losses")
        for name, value in self.suggestions.items():
            lines.append(f"  {name:<11s} {value:.3g}")
        return "\n".join(lines)

    def plot(self):
        """Smoothed loss against the learning rate (log scale), suggestions named."""
        figure = _plotting.new_figure(figsize=(7, 4.5))
        axes = figure.add_subplot()
        axes.plot(self.learning_rates, self.losses, color="lightgray", label="batch loss")
        axes.plot(self.learning_rates, self.smoothed_losses, label="smoothed loss")
        axes.set_xscale("log")
        markers = {"steepest": "tab:green", "valley": "tab:orange",
                   "minimum/10": "tab:purple", "divergence": "tab:red"}
        for name, value in self.suggestions.items():
            axes.axvline(value, color=markers[name], linestyle="--", linewidth=1,
                         label=f"{name}: {value:.2g}")
        finite = self.smoothed_losses[np.isfinite(self.smoothed_losses)]
        if finite.size:
            top = min(finite.max(), 4 * finite[0] if finite[0] > 0 else finite.max())
            axes.set_ylim(finite.min() - 0.05 * abs(finite.min()), top * 1.05 + 1e-12)
        axes.set(xlabel="learning rate", ylabel="loss", title="learning-rate range test")
        axes.legend(fontsize=8)
        return figure


def _check_arguments(start_lr, end_lr, num_steps, batch_size, smoothing, divergence_threshold):
    start_lr = _validation.check_positive("start_lr", start_lr)
    end_lr = _validation.check_positive("end_lr", end_lr)
    if end_lr <= start_lr:
        raise _validation.argument_error(
            "end_lr", f"be larger than `start_lr` ({start_lr:g})", end_lr,
        )
    num_steps = _validation.check_integer("num_steps", num_steps, minimum=2)
    batch_size = _validation.check_integer("batch_size", batch_size, minimum=1)
    smoothing = _validation.check_in_range("smoothing", smoothing, 0.0, 1.0, high_inclusive=False)
    threshold = _validation.check_number("divergence_threshold", divergence_threshold)
    if threshold <= 1:
        raise _validation.argument_error("divergence_threshold", "be > 1", divergence_threshold)
    return start_lr, end_lr, num_steps, batch_size, smoothing, threshold


def fresh_optimizer(model, learning_rate=None):
    """A new optimizer of the model's kind (fresh state); optionally a constant learning rate."""
    optimizer = model.optimizer  # compiled models always have one (default rmsprop)
    config = dict(optimizer.get_config())
    if learning_rate is not None:
        config["learning_rate"] = float(learning_rate)
    return type(optimizer).from_config(config)


def lr_range_test(model, x, y, start_lr=1e-7, end_lr=10.0, num_steps=100, batch_size=32,
                  smoothing=0.98, divergence_threshold=4.0, seed=None):
    """Sweep the learning rate exponentially and record the loss (Smith 2017).

    Trains ``num_steps`` minibatches with a fresh copy of the model's
    optimizer, the learning rate growing as
    ``start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))``. The loss of
    each batch is computed before its update by the backend layer (Keras's
    batch logs are running means of the epoch, tensorflow/tensorflow#58098,
    so they are not used). The curve is smoothed by an EMA with bias
    correction, ``s_i = (beta m_{i-1} + (1 - beta) L_i) / (1 - beta^i)``; the
    sweep stops when the smoothed loss exceeds ``divergence_threshold`` times
    its minimum, or a loss is not finite. All of the model's variables are
    restored bit for bit afterwards; the model's own optimizer is untouched.

    Args:
        model: a compiled keras.Model (its optimizer class and settings are used).
        x, y: training data; batches cycle through a shuffled copy.
        start_lr, end_lr: the sweep's range. Defaults 1e-7 and 10.
        num_steps: number of batches (>= 2). Default 100.
        batch_size: Default 32.
        smoothing: the EMA's beta in [0, 1). Default 0.98 (fastai).
        divergence_threshold: stop when smoothed loss > this x best. Default 4 (fastai).
        seed: seed of the shuffling.

    Returns:
        `LRRangeResult` with the ``steepest``, ``valley``, ``minimum_over_10``
        and ``divergence`` learning rates.

    Example:
        >>> result = lr_range_test(model, x, y)
        >>> model.optimizer.learning_rate = result.valley

    Reference: Smith (2017), "Cyclical Learning Rates for Training Neural
    Networks", section 3.3; fastai's ``lr_find``.
    """
    start_lr, end_lr, num_steps, batch_size, beta, threshold = _check_arguments(
        start_lr, end_lr, num_steps, batch_size, smoothing, divergence_threshold
    )
    _checks.check_compiled_model(model)
    x, y = _checks.check_data(x, y)
    if seed is not None:
        _validation.check_integer("seed", seed, minimum=0)
    optimizer = fresh_optimizer(model, start_lr)
    rates = start_lr * (end_lr / start_lr) ** (np.arange(num_steps) / (num_steps - 1))
    saved = [np.array(keras.ops.convert_to_numpy(v.value), copy=True) for v in model.variables]
    try:
        losses, reason = _sweep(model, optimizer, x, y, rates, batch_size, beta, threshold, seed)
    finally:
        for variable, value in zip(model.variables, saved):
            variable.assign(value)
    return _result(rates, losses, beta, reason)


def _sweep(model, optimizer, x, y, rates, batch_size, beta, threshold, seed):
    function = _backend.make_value_and_grad(model, training=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    losses, average, best = [], 0.0, math.inf
    for step, rate in enumerate(rates):
        start = (step * batch_size) % len(x)
        index = np.take(order, np.arange(start, start + batch_size), mode="wrap")
        values = [v.value for v in model.trainable_variables]
        loss, grads = function(values, x[index], y[index])
        loss = float(keras.ops.convert_to_numpy(loss))
        losses.append(loss)
        if not math.isfinite(loss):
            warnings.warn(f"Learning-rate range test stopped: the loss is {loss} at "
                          f"learning rate {rate:.3g}; the model's weights were restored.",
                          stacklevel=3)
            return losses, f"stopped: non-finite loss at learning rate {rate:.3g}"
        average = beta * average + (1 - beta) * loss
        smoothed = average / (1 - beta ** (step + 1))
        if step > 0 and smoothed > threshold * best:
            return losses, f"stopped: diverged at learning rate {rate:.3g}"
        best = min(best, smoothed)
        optimizer.learning_rate = float(rate)
        optimizer.apply(grads, model.trainable_variables)
    return losses, "completed without diverging"


def _valley(losses):
    """fastai's valley: longest decreasing subsequence, two thirds of the way down it."""
    n = len(losses)
    lengths = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lengths[i] < lengths[j] + 1:
                lengths[i] = lengths[j] + 1
        if lengths[end] < lengths[i]:
            end = i
            start = end - lengths[end]
    sections = (end - start) / 3
    return start + int(sections) + int(sections / 2)


def _result(rates, losses, beta, reason):
    losses = np.asarray(losses, dtype=np.float64)
    recorded = rates[: len(losses)]
    smoothed = np.full(len(losses), np.nan)
    average = 0.0
    for i, loss in enumerate(losses):
        if not np.isfinite(loss):
            break
        average = beta * average + (1 - beta) * loss
        smoothed[i] = average / (1 - beta ** (i + 1))
    stopped = reason.startswith("stopped")
    usable = smoothed[: len(losses) - 1] if stopped else smoothed
    divergence = float(recorded[-1]) if stopped else None
    if len(usable) < 5 or not np.all(np.isfinite(usable)):
        return LRRangeResult(recorded, losses, smoothed, None, None, None, divergence, reason)
    slope = np.gradient(usable, np.log10(recorded[: len(usable)]))
    steepest = float(recorded[int(np.argmin(slope))])
    valley = float(recorded[_valley(list(usable))])
    minimum = float(recorded[int(np.argmin(usable))]) / 10
    return LRRangeResult(recorded, losses, smoothed, steepest, valley, minimum, divergence,
                         reason)
