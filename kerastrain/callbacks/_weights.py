"""Weight and gradient histograms, update/weight ratios, learning rate and momentum."""

from __future__ import annotations

import inspect

import keras
import numpy as np

from kerastrain import _backend, _validation
from kerastrain.callbacks import _common, _probe, _statistics


def probe_gradients(value_and_grad, values, probe):
    """Gradient of the mean loss over the whole probe set, computed batch by batch.

    The loss is a mean over each batch, so the probe-set gradient is
    Σ_b (n_b / N) · g_b. Returns ``(loss, [numpy gradient per variable])``.
    """
    total_loss, total = 0.0, None
    for x, y, weight in probe.batches(with_targets=True):
        share = _probe_size(x) / probe.size
        loss, grads = value_and_grad(values, x, y, weight)
        grads = [np.asarray(keras.ops.convert_to_numpy(g), dtype=np.float64) * share
                 for g in grads]
        total_loss += _common.to_float(loss) * share
        total = grads if total is None else [a + b for a, b in zip(total, grads)]
    return total_loss, total


def _probe_size(x):
    if isinstance(x, dict):
        x = next(iter(x.values()))
    elif isinstance(x, list):
        x = x[0]
    return x.shape[0]


@keras.saving.register_keras_serializable(package="kerastrain")
class WeightHistograms(_common.SummaryCallback):
    """Weight histograms, and gradient histograms on a probe batch, every ``freq`` epochs.

    Writes ``weights/<variable path>`` for every model weight and, with
    ``probe_data=(x, y)``, ``gradients/<variable path>`` for every trainable
    weight: the gradient of the compiled loss (regularization included) over
    the probe set, from one extra backward pass per probe batch
    (`kerastrain._backend.make_value_and_grad`, compiled once), in inference
    mode. TensorBoard shows each as a histogram and a distribution.

    Args:
        log_dir: TensorBoard directory (required: histograms only go there).
        freq: every ``freq`` epochs (default 1).
        probe_data: ``(x, y)`` or ``(x, y, sample_weight)``; None: weights only.
        probe_batch_size: default 128.

    Example:

    ```python
    model.fit(x, y, callbacks=[
        kerastrain.callbacks.WeightHistograms("logs", probe_data=(x[:128], y[:128]))])
    ```
    """

    def __init__(self, log_dir, freq=1, probe_data=None, probe_batch_size=128):
        if log_dir is None:
            raise _validation.argument_error(
                "log_dir", "be a directory", log_dir, "Histograms are only written to TensorBoard.")
        super().__init__(log_dir)
        self.freq = _validation.check_integer("freq", freq, minimum=1)
        self.probe = None if probe_data is None else _probe.Probe(probe_data, probe_batch_size)
        self.probe_batch_size = probe_batch_size
        self._value_and_grad = self._compiled_for = None

    def _check_model(self, model):
        if self.probe is not None:
            self.probe.check_model(model, need_targets=True)
            if self._compiled_for is not model:  # compile once per model, not per fit()
                self._value_and_grad = _backend.make_value_and_grad(model)
                self._compiled_for = model

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.freq == 0:
            self.measure(epoch, logs)

    def measure(self, step=0, logs=None):
        """Write the histograms now; returns ``{tag: numpy array}``."""
        model = self.model
        histograms = {f"weights/{weight.path}": keras.ops.convert_to_numpy(weight.value)
                      for weight in model.weights}
        if self.probe is not None:
            if self._compiled_for is not model:
                self._value_and_grad = _backend.make_value_and_grad(model)
                self._compiled_for = model
            _, grads = probe_gradients(
                self._value_and_grad, _backend.trainable_values(model), self.probe)
            for variable, gradient in zip(model.trainable_variables, grads):
                histograms[f"gradients/{variable.path}"] = gradient
        for tag, values in histograms.items():
            self._emit_histogram(tag, values, step)
        return histograms

    def get_config(self):
        return {
            "log_dir": self.log_dir, "freq": self.freq,
            "probe_data": None if self.probe is None else self.probe.get_config(),
            "probe_batch_size": self.probe_batch_size,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        probe = config.pop("probe_data")
        data = None if probe is None else _probe.Probe.data_from_config(probe)
        return cls(probe_data=data, **config)


@keras.saving.register_keras_serializable(package="kerastrain")
class UpdateRatioLogger(_statistics.StatisticsCallback):
    """Logs the update/weight ratio ‖Δw‖₂ / ‖w‖₂ of every trainable variable.

    The cs231n rule of thumb: around 1e-3; much lower and the learning rate is
    probably too low, much higher and it is probably too high. The ratio is the
    one the optimizer records inside `apply()` from the update it actually
    made (see `GradientNormLogger` for how a plain Keras optimizer is wrapped
    and at which steps the values are recorded).
    Scalars ``update_ratio/<variable path>`` go to TensorBoard and ``logs``.

    Args:
        log_dir: TensorBoard directory, or None to only fill ``logs``.
        update_freq: ``"epoch"`` (last step of each epoch, default) or a number of steps.
        wrap_optimizer: wrap a plain Keras optimizer automatically (default True).

    Example:

    ```python
    model.fit(x, y, callbacks=[kerastrain.callbacks.UpdateRatioLogger("logs")])
    ```
    """

    def observe(self, step, logs=None):
        """Read and log the ratios; returns ``{tag: ratio}``."""
        statistics, step = self.read(step)
        values = {f"update_ratio/{path}": float(ratio)
                  for path, ratio in zip(statistics["paths"], statistics["update_ratios"])}
        self._emit_scalars(values, step, logs)
        return values

    def get_config(self):
        return {"log_dir": self.log_dir, "update_freq": self.update_freq,
                "wrap_optimizer": self.wrap_optimizer}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _inner(optimizer):
    while getattr(optimizer, "inner_optimizer", None) is not None:
        optimizer = optimizer.inner_optimizer
    return optimizer


def momentum_value(optimizer):
    """The current momentum (``momentum``, else ``beta_1``) of ``optimizer``, or None.

    Read from the optimizer's attribute or, for kerastrain presets, its
    hyperparameters. A schedule (a callable of the step) is evaluated at the
    optimizer's iterations; a Keras-style callable of no arguments is called.
    """
    base = _inner(optimizer)
    hyperparameters = getattr(base, "_hyperparameters", None) or {}
    for name in ("momentum", "beta_1"):
        value = getattr(base, name, None)
        if value is None:
            value = hyperparameters.get(name)
        if value is None or isinstance(value, (bool, str)):
            continue
        if callable(value) and not keras.ops.is_tensor(value):
            value = _call_schedule(value, base.iterations)
        return _common.to_float(value)
    return None


def _call_schedule(schedule, iterations):
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return schedule(iterations)
    try:
        parameters = inspect.signature(schedule).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: a callable of the step
        return schedule(iterations)
    required = [p for p in parameters if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return schedule() if not required else schedule(iterations)


@keras.saving.register_keras_serializable(package="kerastrain")
class LearningRateLogger(_common.StepCallback):
    """Logs the learning rate and, where the optimizer has one, the momentum.

    ``learning_rate`` is ``optimizer.learning_rate`` (a schedule is evaluated
    at the current step); ``momentum`` is the optimizer's ``momentum`` (SGD,
    RMSprop) or ``beta_1`` (Adam family), also evaluated when scheduled.
    Both go to TensorBoard and ``logs``.

    Args:
        log_dir: TensorBoard directory, or None to only fill ``logs``.
        update_freq: ``"epoch"`` (default) or a number of steps.

    Example:

    ```python
    model.fit(x, y, callbacks=[kerastrain.callbacks.LearningRateLogger("logs")])
    ```
    """

    def _check_model(self, model):
        if getattr(model, "optimizer", None) is None:
            raise ValueError(
                "LearningRateLogger needs a compiled model. Received: model.optimizer=None. "
                "Call model.compile(optimizer=..., loss=...) before fit()."
            )

    def observe(self, step, logs=None):
        """Read and log the values; returns ``{tag: value}``."""
        optimizer = self.model.optimizer
        values = {"learning_rate": _common.to_float(optimizer.learning_rate)}
        momentum = momentum_value(optimizer)
        if momentum is not None:
            values["momentum"] = momentum
        self._emit_scalars(values, step, logs)
        return values

    def get_config(self):
        return {"log_dir": self.log_dir, "update_freq": self.update_freq}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
