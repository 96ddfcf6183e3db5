"""`DeadReLUDetector`: dead and dormant units in every ReLU layer."""

from __future__ import annotations

import warnings

import keras
import numpy as np

from kerastrain import _validation
from kerastrain.callbacks import _common, _layers, _probe


def dead_units(max_abs_activation):
    """Units whose activation is 0 for every sample and position: max |a_i| = 0."""
    return np.flatnonzero(np.asarray(max_abs_activation) == 0)


def dormant_units(mean_abs_activation, threshold):
    """τ-dormant units (Sokar et al. 2023): s_i = E|a_i| / ((1/H) Σ_k E|a_k|) ≤ τ.

    When every unit of the layer is silent (layer mean 0) all are dormant.
    With τ = 0 the dormant units are exactly the dead ones.
    """
    mean_abs = np.asarray(mean_abs_activation, dtype=np.float64)
    layer_mean = mean_abs.mean()
    if layer_mean == 0:
        return np.arange(mean_abs.size)
    return np.flatnonzero(mean_abs / layer_mean <= threshold)


class UnitStatistics:
    """Per-unit running max |a| and mean |a| over batches (over samples and positions)."""

    def __init__(self):
        self.max_abs = None
        self.sum_abs = None
        self.count = 0

    def update(self, output, axis):
        absolute = np.abs(output.astype(np.float64))
        axes = _layers.unit_reduction_axes(absolute, axis)
        batch_max, batch_sum = absolute.max(axis=axes), absolute.sum(axis=axes)
        self.count += absolute.size // batch_max.size
        if self.max_abs is None:
            self.max_abs, self.sum_abs = batch_max, batch_sum
        else:
            self.max_abs = np.maximum(self.max_abs, batch_max)
            self.sum_abs = self.sum_abs + batch_sum

    @property
    def mean_abs(self):
        return self.sum_abs / max(self.count, 1)


_REMEDIES = (
    "Remedies: lower the learning rate, initialize biases to a small positive value "
    "(e.g. bias_initializer=keras.initializers.Constant(0.01)), re-initialize, or use "
    "LeakyReLU / PReLU / ELU / Maxout."
)


@keras.saving.register_keras_serializable(package="kerastrain")
class DeadReLUDetector(_common.SummaryCallback):
    """Finds dead and dormant units in every ReLU layer, at the end of every ``freq`` epochs.

    A unit (the last axis, or axis 1 for ``data_format="channels_first"``) is
    *dead* when its output is 0 for every sample of the probe set and every
    spatial position; *dormant* (Sokar et al. 2023) when its normalized score
    s_i = E|a_i| / ((1/H) Σ_k E|a_k|) ≤ ``dormant_threshold``. Watched layers:
    Dense / Conv (any layer) with ``activation="relu"`` or ``"relu6"``,
    `ReLU` (``negative_slope=0``) and ``Activation("relu")`` layers, inside
    nested models too. The probe runs through the model in batches of
    ``probe_batch_size``.

    Logged (TensorBoard ``train`` run and ``logs``) per layer:
    ``dead_relu_fraction/<layer>`` and ``dormant_fraction/<layer>``. The unit
    indices are in ``dead_units`` / ``dormant_units`` (``{layer: array}``).
    Warns once per layer when the dead fraction reaches ``warning_fraction``,
    with the chapter's remedies.

    Args:
        probe_data: ``x`` or ``(x, ...)``, a few hundred samples.
        log_dir: TensorBoard directory or None (default: only ``logs``).
        freq: run every ``freq`` epochs (default 1).
        dormant_threshold: τ (default 0.025).
        warning_fraction: dead fraction that triggers the warning (default 0.5).
        probe_batch_size: default 128.
        allow_no_relu: do not raise for a model without ReLU layers (used by
            `monitor`); default False.

    Example:

    ```python
    detector = kerastrain.callbacks.DeadReLUDetector(x_train[:256])
    model.fit(x_train, y_train, callbacks=[detector])
    detector.dead_fractions
    ```

    Reference:
        Sokar, Agarwal, Castro, Evci, "The Dormant Neuron Phenomenon in Deep
        Reinforcement Learning", ICML 2023.
    """

    def __init__(self, probe_data, log_dir=None, freq=1, dormant_threshold=0.025,
                 warning_fraction=0.5, probe_batch_size=128, allow_no_relu=False):
        super().__init__(log_dir)
        self.probe = _probe.Probe(probe_data, probe_batch_size)
        self.freq = _validation.check_integer("freq", freq, minimum=1)
        self.dormant_threshold = _validation.check_in_range(
            "dormant_threshold", dormant_threshold, 0, 1)
        self.warning_fraction = _validation.check_in_range(
            "warning_fraction", warning_fraction, 0, 1, low_inclusive=False)
        self.allow_no_relu = _validation.check_type(
            "allow_no_relu", allow_no_relu, bool, "True or False")
        self.dead_units, self.dormant_units, self.dead_fractions = {}, {}, {}
        self._warned = set()

    def relu_layers(self, model):
        """The watched layers of ``model``."""
        return [layer for layer in _layers.leaf_layers(model)
                if _layers.activation_kind(layer) == "relu"]

    def _check_model(self, model):
        if not self.relu_layers(model) and not self.allow_no_relu:
            raise _validation.argument_error(
                "model", "have at least one ReLU layer for DeadReLUDetector", model.name,
                "Watched: Dense/Conv with activation='relu', ReLU and Activation('relu') "
                "layers. Remove the callback, or pass allow_no_relu=True.",
            )
        self.probe.check_model(model)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.dead_units, self.dormant_units, self.dead_fractions = {}, {}, {}
        self._warned = set()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.freq == 0:
            self.measure(epoch, logs)

    def measure(self, step=0, logs=None):
        """Run the probe now; log and return ``{tag: fraction}``."""
        model = self.model
        layers = self.relu_layers(model)
        statistics = {id(layer): UnitStatistics() for layer in layers}

        def reduce(layer, output):
            statistics[id(layer)].update(output, _layers.channel_axis(layer))

        _probe.record_layer_outputs(model, layers, self.probe, reduce, reader=id(self))
        values = {}
        for layer in layers:
            unit_statistics = statistics[id(layer)]
            if unit_statistics.max_abs is None:
                continue  # not on the path of the model's output
            name = _layers.layer_name(layer)
            dead = dead_units(unit_statistics.max_abs)
            dormant = dormant_units(unit_statistics.mean_abs, self.dormant_threshold)
            units = unit_statistics.max_abs.size
            self.dead_units[name], self.dormant_units[name] = dead, dormant
            self.dead_fractions[name] = dead.size / units
            values[f"dead_relu_fraction/{name}"] = dead.size / units
            values[f"dormant_fraction/{name}"] = dormant.size / units
            self._maybe_warn(name, dead.size, units, step)
        self._emit_scalars(values, step, logs)
        return values

    def _maybe_warn(self, name, dead, units, step):
        if units and dead / units >= self.warning_fraction and name not in self._warned:
            self._warned.add(name)
            warnings.warn(
                f"DeadReLUDetector: {dead} of {units} units of layer `{name}` are dead "
                f"(zero for every probe sample) at epoch {step}. {_REMEDIES}",
                stacklevel=2,
            )

    def get_config(self):
        return {
            "probe_data": self.probe.get_config(), "log_dir": self.log_dir, "freq": self.freq,
            "dormant_threshold": self.dormant_threshold,
            "warning_fraction": self.warning_fraction,
            "probe_batch_size": self.probe.batch_size, "allow_no_relu": self.allow_no_relu,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        data = _probe.Probe.data_from_config(config.pop("probe_data"))
        return cls(probe_data=data, **config)
