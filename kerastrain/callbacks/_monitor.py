"""`monitor(log_dir, probe_data)`: the standard monitoring set in one line."""

from __future__ import annotations

from kerastrain import _validation
from kerastrain.callbacks._activations import ActivationHistograms
from kerastrain.callbacks._dead_relu import DeadReLUDetector
from kerastrain.callbacks._gradient_norms import GradientNormLogger
from kerastrain.callbacks._probe import Probe
from kerastrain.callbacks._weights import LearningRateLogger, UpdateRatioLogger, WeightHistograms


def monitor(log_dir, probe_data, update_freq="epoch", histogram_freq=1, probe_batch_size=128):
    """The chapter's "watch every layer" set of callbacks, writing to ``log_dir``.

    Returns a list for ``model.fit(callbacks=...)``:

    - `GradientNormLogger` (global and per-layer gradient norms, vanishing /
      exploding warnings) and `UpdateRatioLogger` (update/weight ratios), at
      ``update_freq``; a plain Keras optimizer is wrapped automatically;
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
        GradientNormLogger(log_dir, update_freq=update_freq),
        UpdateRatioLogger(log_dir, update_freq=update_freq),
        LearningRateLogger(log_dir, update_freq=update_freq),
        WeightHistograms(log_dir, freq=histogram_freq,
                         probe_data=data if probe.y is not None else None,
                         probe_batch_size=probe_batch_size),
        activations,
        dead_relu,
    ]
