"""`monitor(log_dir, probe_data)`: the standard monitoring set in one line."""

from __future__ import annotations

import keras

from kerastrain import _validation
from kerastrain.callbacks import _common
from kerastrain.callbacks._activations import ActivationHistograms
from kerastrain.callbacks._dead_relu import DeadReLUDetector
from kerastrain.callbacks._gradient_norms import GradientNormLogger
from kerastrain.callbacks._probe import Probe
from kerastrain.callbacks._weights import LearningRateLogger, UpdateRatioLogger, WeightHistograms


def _scalars(logs):
    """The entries of ``logs`` that are numbers or 0-d tensors (others are skipped)."""
    values = {}
    for key, value in (logs or {}).items():
        try:
            values[key] = _common.to_float(value)
        except (TypeError, ValueError):
            continue
    return values


@keras.saving.register_keras_serializable(package="kerastrain")
class MetricCurves(_common.StepCallback):
    """The model's loss and metrics, named and laid out as by `keras.callbacks.TensorBoard`.

    At each epoch end, every number in ``logs`` is written as ``epoch_<name>``:
    ``val_<name>`` to the ``validation`` run (prefix removed), the others to
    the ``train`` run, at step ``epoch``. After each validation during `fit`,
    ``evaluation_<name>_vs_iterations`` goes to the ``validation`` run at the
    optimizer step. With an integer ``update_freq``, ``batch_<name>`` (the
    epoch's running values Keras reports) goes to ``train`` every
    ``update_freq`` optimizer steps. Written with kerastrain's own writer, so
    it works on every backend, without TensorFlow. `monitor` puts it first in
    its list, so that it sees ``logs`` before the other kerastrain callbacks
    add their own scalars (which they write under their own tags).

    Args:
        log_dir: TensorBoard directory (required).
        update_freq: ``"epoch"`` (default) or a number of steps, for ``batch_*``.
    """

    def __init__(self, log_dir, update_freq="epoch"):
        if log_dir is None:
            raise _validation.argument_error(
                "log_dir", "be a directory", log_dir, "Curves are only written to TensorBoard.")
        super().__init__(log_dir, update_freq)

    def observe(self, step, logs=None):
        """``batch_<name>`` of the training logs at optimizer step ``step``."""
        values = {key: value for key, value in _scalars(logs).items()
                  if not key.startswith("val_")}
        self._write({f"batch_{key}": value for key, value in values.items()}, step, "train")

    def on_epoch_end(self, epoch, logs=None):
        values = _scalars(logs)
        self._write({f"epoch_{key}": value for key, value in values.items()
                     if not key.startswith("val_")}, epoch, "train")
        self._write({f"epoch_{key[4:]}": value for key, value in values.items()
                     if key.startswith("val_")}, epoch, "validation")

    def on_test_end(self, logs=None):
        if getattr(self.model, "optimizer", None) is None:
            return
        self._write({f"evaluation_{key}_vs_iterations": value
                     for key, value in _scalars(logs).items()}, self._step(), "validation")

    def _write(self, values, step, run):
        if self._writer is not None and values:
            self._writer.scalars(values, step, run=run)

    def get_config(self):
        return {"log_dir": self.log_dir, "update_freq": self.update_freq}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def monitor(log_dir, probe_data, update_freq="epoch", histogram_freq=1, probe_batch_size=128):
    """The chapter's "watch every layer" set of callbacks, writing to ``log_dir``.

    Returns a list for ``model.fit(callbacks=...)``:

    - `MetricCurves`: the loss and metric curves as Keras's TensorBoard
      callback writes them (``epoch_loss``, ``epoch_accuracy``, ... in the
      ``train`` and ``validation`` runs), on every backend;
    - `GradientNormLogger` (global and per-layer gradient norms, vanishing /
      exploding warnings) and `UpdateRatioLogger` (update/weight ratios), at
      ``update_freq``: they need an optimizer that records gradient
      statistics (any kerastrain optimizer, or ``monitored(opt)`` for any
      other; a plain Keras optimizer fails before the first step, saying so);
    - `LearningRateLogger` (learning rate, momentum) at ``update_freq``;
    - `WeightHistograms` (weights, and gradients on the probe when
      ``probe_data`` has targets), `ActivationHistograms` and
      `DeadReLUDetector` (skipped silently by the model if it has no ReLU),
      every ``histogram_freq`` epochs on ``probe_data``.

    Keep ``probe_data`` small (a few hundred samples): it is run through the
    model every ``histogram_freq`` epochs.

    Args:
        log_dir: TensorBoard directory (required).
        probe_data: ``x`` or ``(x, y)`` (with ``y``, gradient histograms too).
        update_freq: ``"epoch"`` (default) or a number of steps, for the scalars.
        histogram_freq: epochs between probe runs (default 1).
        probe_batch_size: default 128.

    Example:

    ```python
    model.compile(optimizer=kerastrain.optimizers.Adam(), loss="mse")
    model.fit(x, y, validation_split=0.2, epochs=10,
              callbacks=kerastrain.callbacks.monitor("logs", (x[:256], y[:256])))
    ```
    """
    if log_dir is None:
        raise _validation.argument_error(
            "log_dir", "be a directory", log_dir, "monitor() writes to TensorBoard.")
    probe = Probe(probe_data, probe_batch_size)
    data = (probe.x, probe.y, probe.sample_weight)
    histogram_freq = _validation.check_integer("histogram_freq", histogram_freq, minimum=1)
    activations = ActivationHistograms(data, log_dir, freq=histogram_freq,
                                       probe_batch_size=probe_batch_size)
    dead_relu = DeadReLUDetector(data, log_dir, freq=histogram_freq,
                                 probe_batch_size=probe_batch_size, allow_no_relu=True)
    dead_relu.probe = activations.probe  # one forward pass on the probe serves both
    return [
        MetricCurves(log_dir, update_freq=update_freq),
        GradientNormLogger(log_dir, update_freq=update_freq),
        UpdateRatioLogger(log_dir, update_freq=update_freq),
        LearningRateLogger(log_dir, update_freq=update_freq),
        WeightHistograms(log_dir, freq=histogram_freq,
                         probe_data=data if probe.y is not None else None,
                         probe_batch_size=probe_batch_size),
        activations,
        dead_relu,
    ]
