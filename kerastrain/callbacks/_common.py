"""What every kerastrain monitoring callback shares.

- one `SummaryWriter` per ``log_dir``, shared by all callbacks writing there
  (TensorBoard only tails the newest event file of a run directory, so
  several writers in one directory would lose events);
- checking ``log_dir`` at `on_train_begin`, before any training step;
- scalars written to TensorBoard *and* put into ``logs`` (so `History`,
  `CSVLogger` and Keras's own TensorBoard see them);
- ``update_freq`` validation and the step counter to log at.
"""

from __future__ import annotations

import os
import threading

import keras
import numpy as np

from kerastrain import _validation
from kerastrain.tensorboard import SummaryWriter, check_log_dir

_LOCK = threading.Lock()
# Global on purpose: callbacks of one process writing into the same log_dir (say
# monitor()'s four, or several fits of one model) must share one event file, and each
# entry lives only while some callback holds it (reference count; removed at zero).
_WRITERS = {}  # absolute log_dir -> [writer, reference count]


def acquire_writer(log_dir):
    """The shared `SummaryWriter` of ``log_dir`` (created on first use)."""
    key = os.path.abspath(os.fspath(log_dir))
    with _LOCK:
        entry = _WRITERS.get(key)
        if entry is None:
            entry = _WRITERS[key] = [SummaryWriter(key), 0]
        entry[1] += 1
        return entry[0]


def release_writer(writer):
    """Flush; close ``writer`` when its last user releases it."""
    key = os.path.abspath(writer.log_dir)
    with _LOCK:
        entry = _WRITERS.get(key)
        if entry is None or entry[0] is not writer:
            writer.close()
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del _WRITERS[key]
            writer.close()
        else:
            writer.flush()


def check_optional_log_dir(log_dir):
    """``None`` (scalars only go into ``logs``) or a path; the type is checked now."""
    if log_dir is not None and not isinstance(log_dir, (str, os.PathLike)):
        raise _validation.type_error(
            "log_dir", "a path (str or os.PathLike) or None", log_dir,
            "Pass the same directory as to keras.callbacks.TensorBoard.",
        )
    return None if log_dir is None else os.fspath(log_dir)


def check_update_freq(update_freq, name="update_freq"):
    """``"epoch"`` or a positive number of training steps."""
    if isinstance(update_freq, str):
        return _validation.check_one_of(
            name, update_freq, ["epoch"], "Use 'epoch' or a positive integer number of steps."
        )
    return _validation.check_integer(
        name, update_freq, minimum=1, hint="Use 'epoch' or a positive integer number of steps."
    )


def to_float(value):
    """A Python float from a number or a 0-d tensor of any backend."""
    return float(np.asarray(keras.ops.convert_to_numpy(value)).reshape(()))


def layer_of(path):
    """The layer part of a variable path: ``"outer/dense/kernel"`` -> ``"outer/dense"``."""
    return path.rsplit("/", 1)[0] if "/" in path else path


class SummaryCallback(keras.callbacks.Callback):
    """Base class of the callbacks writing summaries: scalars and histograms.

    It owns an optional TensorBoard ``log_dir`` (a shared writer, opened at
    `on_train_begin`, released at `on_train_end`) and puts every scalar into
    ``logs`` as well. (Not Keras's ``MonitorCallback``, which watches one
    metric for `EarlyStopping`; this one writes what it measures.)

    Subclasses validate their own arguments in ``__init__`` and their
    model-dependent arguments in `_check_model` (called first thing in
    `on_train_begin`, before the writer opens and before any training step).
    """

    def __init__(self, log_dir=None):
        super().__init__()
        self.log_dir = check_optional_log_dir(log_dir)
        self._writer = None
        self.latest = {}

    def _check_model(self, model):
        """Raise for a model this callback cannot watch (override)."""

    def on_train_begin(self, logs=None):
        self._check_model(self.model)
        self.latest = {}
        self._close_writer()
        if self.log_dir is not None:
            check_log_dir(self.log_dir)
            self._writer = acquire_writer(self.log_dir)

    def on_train_end(self, logs=None):
        self._close_writer()

    def _close_writer(self):
        if self._writer is not None:
            release_writer(self._writer)
            self._writer = None

    def _emit_scalars(self, values, step, logs):
        """Put ``{tag: float}`` into ``logs`` and TensorBoard's ``train`` run."""
        self.latest = dict(values)
        if logs is not None:
            logs.update(values)
        if self._writer is not None:
            self._writer.scalars(values, step)

    def _emit_histogram(self, tag, values, step):
        if self._writer is not None:
            self._writer.histogram(tag, values, step)

    def _step(self):
        """The optimizer's iteration count (true step, also with steps_per_execution)."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return 0
        return int(keras.ops.convert_to_numpy(optimizer.iterations))


class StepCallback(SummaryCallback):
    """Logs at every epoch end, or every ``update_freq`` optimizer steps."""

    def __init__(self, log_dir=None, update_freq="epoch"):
        super().__init__(log_dir)
        self.update_freq = check_update_freq(update_freq)
        if self.update_freq != "epoch":
            self.on_train_batch_end = self._on_train_batch_end

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._step_count = self._step()
        self._epoch_start = self._step_count
        self._last_bucket = None if self.update_freq == "epoch" else self._step_count // self.update_freq

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._step_count

    def _on_train_batch_end(self, batch, logs=None):
        self._step_count = self._epoch_start + batch + 1
        bucket = self._step_count // self.update_freq
        if bucket != self._last_bucket:
            self._last_bucket = bucket
            self.observe(self._step_count, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.update_freq == "epoch":
            self.observe(epoch, logs)
        elif logs is not None:
            logs.update(self.latest)  # the last step's values, for History / CSVLogger

    def observe(self, step, logs=None):
        raise NotImplementedError
