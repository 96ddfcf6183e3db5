"""`ActivationHistograms`: per-layer activation histograms and statistics."""

from __future__ import annotations

import math

import keras
import numpy as np

from kerastrain import _validation
from kerastrain.callbacks import _common, _layers, _probe

_ACTIVATION_LAYERS = (
    keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU,
    keras.layers.PReLU, keras.layers.Softmax,
)


def activation_counts(values, kind, saturation_threshold, near_zero_threshold):
    """Sufficient statistics of one batch of activations (pure function).

    Returns ``{"count", "sum", "sum_squares", "saturated", "near_zero"}``:
    saturated counts |a| ≥ 1 − ε for tanh and a ≤ ε or a ≥ 1 − ε for sigmoid
    (ε = ``saturation_threshold``); near_zero counts |a| ≤ ``near_zero_threshold``
    for ReLU. Counts that do not apply to ``kind`` are 0.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    counts = {"count": values.size, "sum": values.sum(),
              "sum_squares": np.square(values).sum(), "saturated": 0, "near_zero": 0}
    epsilon = saturation_threshold
    if kind == "tanh":
        counts["saturated"] = int(np.count_nonzero(np.abs(values) >= 1 - epsilon))
    elif kind == "sigmoid":
        counts["saturated"] = int(np.count_nonzero((values <= epsilon) | (values >= 1 - epsilon)))
    elif kind == "relu":
        counts["near_zero"] = int(np.count_nonzero(np.abs(values) <= near_zero_threshold))
    return counts


def merge_counts(total, counts):
    """Add one batch's `activation_counts` into ``total`` (or start it)."""
    if total is None:
        return dict(counts)
    return {key: total[key] + counts[key] for key in total}


def activation_statistics(counts, kind):
    """Mean, std (population) and, by kind, saturation or near-zero fraction."""
    count = max(counts["count"], 1)
    mean = counts["sum"] / count
    variance = max(counts["sum_squares"] / count - mean * mean, 0.0)
    result = {"mean": mean, "std": math.sqrt(variance)}
    if kind in ("tanh", "sigmoid"):
        result["saturation"] = counts["saturated"] / count
    elif kind == "relu":
        result["near_zero"] = counts["near_zero"] / count
    return result


@keras.saving.register_keras_serializable(package="kerastrain")
class ActivationHistograms(_common.SummaryCallback):
    """Per-layer activation histograms (and distributions) on a probe set, every ``freq`` epochs.

    For each watched layer the outputs on ``probe_data`` (run in batches of
    ``probe_batch_size``) give a TensorBoard histogram ``activations/<layer>``
    (the distributions dashboard shows the same data) and scalars, also put
    into ``logs``: ``activation_mean/<layer>``, ``activation_std/<layer>``,
    for sigmoid/tanh layers ``activation_saturation/<layer>`` (fraction with
    |a| ≥ 1 − ε for tanh, a ≤ ε or a ≥ 1 − ε for sigmoid) and for ReLU layers
    ``activation_near_zero/<layer>`` (fraction with |a| ≤ ``near_zero_threshold``).
    Statistics use every value; the histogram uses at most
    ``max_histogram_values`` of them per layer, evenly strided.

    Watched by default: every leaf layer (nested models included) that has
    an activation (Dense/Conv ``activation=...``), is an activation layer,
    or has trainable weights. ``layers`` picks layers by name or path.

    Args:
        probe_data: ``x`` or ``(x, ...)``, a few hundred samples.
        log_dir: TensorBoard directory (None: only ``logs``).
        freq: every ``freq`` epochs (default 1).
        layers: layer names / paths to watch (default: see above).
        saturation_threshold: ε (default 0.01).
        near_zero_threshold: default 1e-6.
        probe_batch_size: default 128.
        max_histogram_values: default 100_000.

    Example:

    ```python
    model.fit(x, y, callbacks=[
        kerastrain.callbacks.ActivationHistograms(x[:256], "logs")])
    ```
    """

    def __init__(self, probe_data, log_dir=None, freq=1, layers=None, saturation_threshold=0.01,
                 near_zero_threshold=1e-6, probe_batch_size=128, max_histogram_values=100_000):
        super().__init__(log_dir)
        self.probe = _probe.Probe(probe_data, probe_batch_size)
        self.freq = _validation.check_integer("freq", freq, minimum=1)
        if layers is not None:
            if isinstance(layers, str) or not all(isinstance(name, str) for name in layers):
                raise _validation.type_error("layers", "a list of layer names", layers)
            layers = list(layers)
        self.layers = layers
        self.saturation_threshold = _validation.check_in_range(
            "saturation_threshold", saturation_threshold, 0, 0.5, low_inclusive=False,
            high_inclusive=False)
        self.near_zero_threshold = _validation.check_positive(
            "near_zero_threshold", near_zero_threshold, allow_zero=True)
        self.max_histogram_values = _validation.check_integer(
            "max_histogram_values", max_histogram_values, minimum=1)
        self.statistics = {}

    def watched_layers(self, model):
        """The layers this callback records."""
        leaves = _layers.leaf_layers(model)
        if self.layers is None:
            return [layer for layer in leaves
                    if _layers.activation_kind(layer) is not None
                    or isinstance(layer, _ACTIVATION_LAYERS) or layer.trainable_weights]
        by_name = {}
        for layer in leaves:
            by_name.setdefault(layer.name, layer)
            by_name[_layers.layer_name(layer)] = layer
        missing = [name for name in self.layers if name not in by_name]
        if missing:
            raise _validation.argument_error(
                "layers", "name layers of the model", missing,
                f"Known layers: {sorted(_layers.layer_name(layer) for layer in leaves)}.",
            )
        return [by_name[name] for name in self.layers]

    def _check_model(self, model):
        if not self.watched_layers(model):
            raise _validation.argument_error(
                "model", "have a layer with an activation or weights for ActivationHistograms",
                model.name)
        self.probe.check_model(model)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.statistics = {}

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.freq == 0:
            self.measure(epoch, logs)

    def measure(self, step=0, logs=None):
        """Run the probe now; write histograms; log and return the scalars."""
        model = self.model
        layers = self.watched_layers(model)
        batches = math.ceil(self.probe.size / self.probe.batch_size)
        per_batch = max(1, self.max_histogram_values // batches)
        counts, samples = {}, {}

        def reduce(layer, output):
            key = id(layer)
            kind = _layers.activation_kind(layer)
            counts[key] = merge_counts(counts.get(key), activation_counts(
                output, kind, self.saturation_threshold, self.near_zero_threshold))
            flat = output.reshape(-1)
            stride = max(1, math.ceil(flat.size / per_batch))
            samples.setdefault(key, []).append(flat[::stride])

        _probe.record_layer_outputs(model, layers, self.probe, reduce, reader=id(self))
        values = {}
        for layer in layers:
            if id(layer) not in counts:
                continue
            name = _layers.layer_name(layer)
            statistics = activation_statistics(counts[id(layer)], _layers.activation_kind(layer))
            self.statistics[name] = statistics
            for key, value in statistics.items():
                values[f"activation_{key}/{name}"] = value
            self._emit_histogram(f"activations/{name}", np.concatenate(samples[id(layer)]), step)
        self._emit_scalars(values, step, logs)
        return values

    def get_config(self):
        return {
            "probe_data": self.probe.get_config(), "log_dir": self.log_dir, "freq": self.freq,
            "layers": self.layers, "saturation_threshold": self.saturation_threshold,
            "near_zero_threshold": self.near_zero_threshold,
            "probe_batch_size": self.probe.batch_size,
            "max_histogram_values": self.max_histogram_values,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        data = _probe.Probe.data_from_config(config.pop("probe_data"))
        return cls(probe_data=data, **config)
