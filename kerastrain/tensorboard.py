"""One TensorBoard event writer for every kerastrain callback — no TensorFlow needed.

Events are written with the `tensorboard` package's own `EventFileWriter` and
summaries built by its plugins' ``pb`` functions (scalars, histograms, images,
text, hparams), so logs written on the JAX or PyTorch backend read exactly
like those of `keras.callbacks.TensorBoard`: one sub-directory per run,
``train/`` and ``validation/`` by default, so both show in one dashboard.

Example:

    writer = SummaryWriter("logs/run1")
    writer.scalar("epoch_loss", 0.25, step=0)                     # logs/run1/train
    writer.scalar("epoch_loss", 0.31, step=0, run="validation")
    writer.histogram("dense/kernel", weights, step=0)
    writer.close()
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import threading
import time

import numpy as np

from kerastrain import _validation

__all__ = ["SummaryWriter", "check_log_dir"]


def _avoid_importing_tensorflow():
    """Use tensorboard's TF stub unless TensorFlow is the backend or already loaded.

    `tensorboard.compat.tf` imports TensorFlow when it is installed; on the JAX
    or torch backend that costs seconds and may grab GPU memory. tensorboard
    itself offers the `tensorboard.compat.notf` marker module to force its
    stub. The marker is in ``sys.modules`` only while tensorboard's lazy
    ``tf`` module resolves (here, at once) and is removed afterwards; the
    resolved stub stays, because tensorboard resolves that module once per
    process.
    """
    if "tensorflow" in sys.modules:
        return
    import keras

    if keras.config.backend() == "tensorflow":
        return
    import types

    from tensorboard import compat

    marker = "tensorboard.compat.notf"
    added = marker not in sys.modules
    if added:
        sys.modules[marker] = types.ModuleType(marker)
    try:
        dir(compat.tf)  # resolves the lazy module now, while the marker is there
    finally:
        if added:
            del sys.modules[marker]


def check_log_dir(log_dir, name="log_dir"):
    """Create ``log_dir`` if needed and prove it is writable; raise ValueError if not."""
    if not isinstance(log_dir, (str, os.PathLike)):
        raise _validation.type_error(name, "a path (str or os.PathLike)", log_dir)
    path = os.fspath(log_dir)
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".kerastrain-write-test"):
            pass
    except OSError as error:
        raise _validation.argument_error(
            name, "be a writable directory", path,
            f"Writing there failed with: {error.strerror or error}. "
            "Choose a directory you can write to.",
        ) from None
    return path


class SummaryWriter:
    """Writes TensorBoard summaries into ``log_dir/<run>/``.

    Args:
        log_dir: the root directory, as for `keras.callbacks.TensorBoard`.
        flush_secs: how often pending events are flushed (default 10 s);
            `flush()` and `close()` flush at once.
        max_queue: events queued before a write.
    """

    def __init__(self, log_dir, flush_secs=10, max_queue=100):
        self.log_dir = check_log_dir(log_dir)
        self.flush_secs = _validation.check_positive("flush_secs", flush_secs)
        self.max_queue = _validation.check_integer("max_queue", max_queue, minimum=1)
        self._writers = {}
        self._lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------
    def _writer(self, run):
        key = run or ""
        with self._lock:
            if key not in self._writers:
                _avoid_importing_tensorflow()
                from tensorboard.summary.writer.event_file_writer import EventFileWriter

                directory = os.path.join(self.log_dir, key) if key else self.log_dir
                self._writers[key] = EventFileWriter(
                    directory, max_queue_size=self.max_queue, flush_secs=self.flush_secs
                )
            return self._writers[key]

    def _add(self, summary, step, run):
        from tensorboard.compat.proto import event_pb2

        step = _validation.check_integer("step", int(step) if isinstance(step, np.integer) else step)
        event = event_pb2.Event(wall_time=time.time(), step=step, summary=summary)
        self._writer(run).add_event(event)

    # -- summaries --------------------------------------------------------
    def scalar(self, tag, value, step, run="train", description=None):
        """One scalar (any number or 0-d tensor)."""
        from tensorboard.plugins.scalar import summary_v2

        value = np.asarray(value, dtype=np.float64).reshape(())
        self._add(summary_v2.scalar_pb(tag, value, description=description), step, run)

    def scalars(self, values, step, run="train"):
        """Several scalars from a ``{tag: value}`` mapping."""
        for tag, value in values.items():
            self.scalar(tag, value, step, run)

    def histogram(self, tag, values, step, run="train", buckets=30, description=None):
        """A histogram (also shown by the distributions dashboard) of ``values``.

        Same bucket layout as `tensorboard.plugins.histogram.summary_v2.histogram_pb`
        (``[buckets, 3]`` rows of left edge, right edge, count), computed with
        `numpy.histogram` instead of a one-hot matrix, so large weights are cheap.
        """
        from tensorboard.plugins.histogram import metadata

        buckets = _validation.check_integer("buckets", buckets, minimum=1)
        data = np.asarray(values, dtype=np.float64).reshape(-1)
        data = data[np.isfinite(data)]
        if data.size == 0:
            table = np.zeros((buckets, 3))
        elif data.min() == data.max():
            edges = np.full(buckets, data.min())
            counts = np.zeros(buckets)
            counts[-1] = data.size
            table = np.stack([edges, edges, counts], axis=1)
        else:
            counts, edges = np.histogram(data, bins=buckets)
            table = np.stack([edges[:-1], edges[1:], counts], axis=1)
        summary_metadata = metadata.create_summary_metadata(
            display_name=None, description=description
        )
        self._add(_tensor_summary(tag, summary_metadata, table.astype(np.float64)), step, run)

    def image(self, tag, image, step, run="train", description=None):
        """An image: a matplotlib ``Figure`` (saved as PNG) or an HxW[xC] array.

        Float arrays are taken in [0, 1]; uint8 arrays as they are.
        """
        from tensorboard.plugins.image import metadata

        png, width, height = _png(image)
        summary_metadata = metadata.create_summary_metadata(
            display_name=None, description=description
        )
        content = np.array([str(width).encode(), str(height).encode(), png], dtype=object)
        self._add(_tensor_summary(tag, summary_metadata, content), step, run)

    def text(self, tag, text, step, run="train", description=None):
        """Markdown text."""
        from tensorboard.plugins.text import summary_v2

        self._add(summary_v2.text_pb(tag, str(text), description=description), step, run)

    def hparams(self, hparams, metrics=(), run=None, trial_id=None, step=0):
        """Hyperparameters of one run for the HParams dashboard.

        Args:
            hparams: ``{name: bool | int | float | str}``.
            metrics: tags of scalars to show against them (e.g. ``"epoch_loss"``).
            run: sub-directory of this run (default: ``log_dir`` itself).
            trial_id: a name for the session group (default: a hash).
        """
        from tensorboard.plugins.hparams import summary_v2

        values = {key: _plain(value) for key, value in hparams.items()}
        experiment = summary_v2.hparams_config_pb(
            [summary_v2.HParam(key) for key in values],
            [summary_v2.Metric(tag) for tag in metrics],
        )
        self._add(experiment, step, run)
        self._add(summary_v2.hparams_pb(values, trial_id=trial_id), step, run)

    def flush(self):
        """Write everything pending to disk."""
        for writer in list(self._writers.values()):
            writer.flush()

    def close(self):
        """Flush and close every run's file."""
        with self._lock:
            for writer in self._writers.values():
                writer.close()
            self._writers.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _plain(value):
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _tensor_summary(tag, summary_metadata, array):
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.util import tensor_util

    summary = summary_pb2.Summary()
    summary.value.add(
        tag=tag, metadata=summary_metadata, tensor=tensor_util.make_tensor_proto(array)
    )
    return summary


def _png(image):
    """PNG bytes, width and height of a matplotlib Figure or an image array."""
    if hasattr(image, "savefig"):
        buffer = io.BytesIO()
        image.savefig(buffer, format="png")
        width, height = (int(round(v)) for v in image.get_size_inches() * image.dpi)
        return buffer.getvalue(), width, height
    from PIL import Image

    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise _validation.argument_error(
            "image", "be a matplotlib Figure or an array of shape (H, W) or (H, W, 1|3|4)",
            getattr(array, "shape", image),
        )
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue(), array.shape[1], array.shape[0]
