"""Probe data: a small fixed batch set the monitoring callbacks look at.

``probe_data`` is ``x`` or a tuple ``(x,)``, ``(x, y)`` or
``(x, y, sample_weight)`` -- the convention of `model.fit` -- where ``x`` is
an array (or a list / dict of arrays for a multi-input model). It is kept on
the host as numpy and run through the model in batches of ``batch_size``,
never all at once.

`record_layer_outputs` runs the model eagerly with the chosen layers' `call`
temporarily wrapped, so it sees layers at any depth (nested models included)
and works on every backend.
"""

from __future__ import annotations

import contextlib
import weakref

import keras
import numpy as np

from kerastrain import _validation

_HINT = "Pass an array x, or a tuple (x,), (x, y) or (x, y, sample_weight) of arrays."


def _as_array(value, name):
    if isinstance(value, (list, dict)) or value is None:
        raise _validation.type_error(name, "an array", value, _HINT)
    array = np.asarray(keras.ops.convert_to_numpy(value))
    if array.dtype == object or array.ndim == 0:
        raise _validation.type_error(name, "an array with a batch axis", value, _HINT)
    return array


def _structure_to_numpy(value, name):
    if isinstance(value, dict):
        return {key: _as_array(item, f"{name}[{key!r}]") for key, item in value.items()}
    if isinstance(value, list):
        return [_as_array(item, f"{name}[{index}]") for index, item in enumerate(value)]
    return _as_array(value, name)


def _leaves(structure):
    if isinstance(structure, dict):
        return list(structure.values())
    if isinstance(structure, list):
        return list(structure)
    return [structure]


def _slice(structure, start, stop):
    if isinstance(structure, dict):
        return {key: item[start:stop] for key, item in structure.items()}
    if isinstance(structure, list):
        return [item[start:stop] for item in structure]
    return structure[start:stop]


class Probe:
    """Validated probe data.

    Attributes:
        x, y, sample_weight: numpy structures (``y`` / ``sample_weight`` may be None).
        size: the number of samples.
    """

    def __init__(self, probe_data, batch_size=64, name="probe_data"):
        self.name = name
        self.batch_size = _validation.check_integer("probe_batch_size", batch_size, minimum=1)
        if isinstance(probe_data, tuple):
            if not 1 <= len(probe_data) <= 3:
                raise _validation.argument_error(
                    name, "be x or a tuple (x,), (x, y) or (x, y, sample_weight)",
                    f"tuple of length {len(probe_data)}",
                )
            parts = list(probe_data) + [None] * (3 - len(probe_data))
        else:
            parts = [probe_data, None, None]
        self.x = _structure_to_numpy(parts[0], name)
        self.y = None if parts[1] is None else _structure_to_numpy(parts[1], f"{name} y")
        self.sample_weight = None if parts[2] is None else _as_array(
            parts[2], f"{name} sample_weight"
        )
        self.size = self._check_sizes()
        self.last_run = None  # the last forward pass, shared by readers (`record_layer_outputs`)

    def _check_sizes(self):
        leaves = _leaves(self.x) + (_leaves(self.y) if self.y is not None else [])
        if self.sample_weight is not None:
            leaves.append(self.sample_weight)
        if not leaves:
            raise _validation.argument_error(self.name, "contain at least one array", self.x, _HINT)
        sizes = sorted({leaf.shape[0] for leaf in leaves})
        if len(sizes) != 1:
            raise _validation.argument_error(
                self.name, "have the same number of samples in every array",
                f"arrays with {sizes} samples",
            )
        if sizes[0] == 0:
            raise _validation.argument_error(self.name, "contain at least one sample", "0 samples")
        return sizes[0]

    def batches(self, with_targets=False):
        """Yield ``x`` (or ``(x, y, sample_weight)``) in batches of ``batch_size``."""
        for start in range(0, self.size, self.batch_size):
            stop = min(start + self.batch_size, self.size)
            x = _slice(self.x, start, stop)
            if not with_targets:
                yield x
                continue
            y = None if self.y is None else _slice(self.y, start, stop)
            weight = None if self.sample_weight is None else self.sample_weight[start:stop]
            yield x, y, weight

    def check_model(self, model, need_targets=False):
        """Raise ValueError naming the argument if the probe cannot feed ``model``."""
        if need_targets and self.y is None:
            raise _validation.argument_error(
                self.name, "include targets, as a tuple (x, y)", "x only",
                "Gradient histograms need a loss, so pass probe_data=(x, y).",
            )
        inputs = getattr(model, "inputs", None)
        try:
            leaves = _leaves(self.x)
            shapes = [tuple(t.shape) for t in inputs] if inputs else None
        except (AttributeError, ValueError):
            shapes = None
        if shapes is not None and not isinstance(self.x, dict):
            if len(leaves) != len(shapes):
                raise _validation.argument_error(
                    self.name, f"give the model its {len(shapes)} input(s)",
                    f"{len(leaves)} array(s)",
                )
            for leaf, shape in zip(leaves, shapes):
                if not _compatible(leaf.shape, shape):
                    raise _validation.argument_error(
                        self.name, f"have inputs of shape {shape} (None: any size)",
                        f"x of shape {leaf.shape}",
                        "Use samples shaped like the training data.",
                    )
            return
        first = _slice(self.x, 0, 1)
        try:
            model(first, training=False)
        except Exception as error:
            raise _validation.argument_error(
                self.name, "be accepted by the model", f"x of shapes "
                f"{[leaf.shape for leaf in leaves]}",
                f"Calling the model on one sample failed with: {error}",
            ) from None

    def get_config(self):
        """A JSON-friendly description that `Probe.from_config` turns back into data."""
        def encode(structure):
            if structure is None:
                return None
            if isinstance(structure, dict):
                return {"dict": {key: encode(item) for key, item in structure.items()}}
            if isinstance(structure, list):
                return {"list": [encode(item) for item in structure]}
            return {"values": structure.tolist(), "dtype": str(structure.dtype)}

        return {
            "x": encode(self.x), "y": encode(self.y),
            "sample_weight": encode(self.sample_weight),
        }

    @staticmethod
    def data_from_config(config):
        """The ``probe_data`` tuple described by `get_config()`."""
        def decode(entry):
            if entry is None:
                return None
            if "dict" in entry:
                return {key: decode(item) for key, item in entry["dict"].items()}
            if "list" in entry:
                return [decode(item) for item in entry["list"]]
            return np.asarray(entry["values"], dtype=entry["dtype"])

        return (decode(config["x"]), decode(config["y"]), decode(config["sample_weight"]))


def _compatible(actual, expected):
    if len(actual) != len(expected):
        return False
    return all(e is None or a == e for a, e in zip(actual[1:], expected[1:]))


@contextlib.contextmanager
def _wrapped_calls(layers, sink):
    """Temporarily route each layer's ``call`` output into ``sink(layer, output)``."""
    wrapped = []
    try:
        for layer in layers:
            original = layer.call

            def call(*args, __layer=layer, __original=original, **kwargs):
                output = __original(*args, **kwargs)
                sink(__layer, output)
                return output

            object.__setattr__(layer, "call", call)
            wrapped.append(layer)
        yield
    finally:
        for layer in wrapped:
            object.__delattr__(layer, "call")


class _Run:
    """One forward pass of a probe: its layer outputs, kept on the `Probe` itself.

    Owned by the probe (no module-level cache), so it lives as long as the
    callbacks holding that probe; the model is held weakly.
    """

    def __init__(self, model, version, outputs):
        self.model = weakref.ref(model)
        self.version = version
        self.outputs = outputs
        self.readers = set()


def _weights_version(model):
    optimizer = getattr(model, "optimizer", None)
    iterations = getattr(optimizer, "iterations", None)
    if iterations is None:
        return None  # unknown: never reuse
    return int(keras.ops.convert_to_numpy(iterations))


def _cached_outputs(model, probe, version, layers, reader):
    """The probe's last run's outputs if this is another reader at the same model and step."""
    run = probe.last_run
    if version is None or run is None or run.version != version or reader in run.readers:
        return None
    if run.model() is not model:
        return None
    outputs = run.outputs
    return outputs if all(id(layer) in outputs for layer in layers) else None


def record_layer_outputs(model, layers, probe, reduce, reader=None):
    """Run ``probe`` through ``model`` batch by batch; call ``reduce(layer, numpy_output)``.

    Outputs are handed over batch by batch. The last run is kept on ``probe``
    (`Probe.last_run`, one entry per probe) so that a *different* ``reader`` looking at the same `Probe` object and
    model at the same optimizer step (`ActivationHistograms` then
    `DeadReLUDetector` in `monitor`) shares the forward pass; the same reader
    asking again always runs the model again.
    """
    version = _weights_version(model)
    outputs = _cached_outputs(model, probe, version, layers, reader)
    if outputs is None:
        outputs = {id(layer): [] for layer in layers}

        def sink(layer, output):
            if isinstance(output, (list, tuple, dict)):
                return  # multi-output layers (RNN states ...) are not watched
            outputs[id(layer)].append(np.asarray(keras.ops.convert_to_numpy(output)))

        with _wrapped_calls(layers, sink):
            for x in probe.batches():
                model(x, training=False)
        probe.last_run = _Run(model, version, outputs)
    if reader is not None:
        probe.last_run.readers.add(reader)
    for layer in layers:
        for output in outputs[id(layer)]:
            reduce(layer, output)
