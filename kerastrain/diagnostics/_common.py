"""Shared machinery of the diagnostics: input checks, float64 copies, flat objectives.

Every analysis works on a *copy* of the model's loss as a pure function of a
flat parameter vector (`Objective`), so the user's weights are never written.
With ``dtype="float64"`` (the default) the copy is the model rebuilt from its
config with a float64 dtype policy, the weights copied in, and the compiled
loss rebuilt in float64. Everything an `Objective` computes in float64 runs
inside `kerastrain._backend.float64_scope()` (JAX's 64-bit mode, Keras's
float64 promotion), which restores both on exit: a diagnostic leaves no global
setting changed.
"""

from __future__ import annotations

import copy

import keras
import numpy as np

from kerastrain import _backend, _validation

DTYPES = ("float64", "float32")

_REGULARIZER_KEYS = {
    "kernel_regularizer", "bias_regularizer", "activity_regularizer",
    "beta_regularizer", "gamma_regularizer", "depthwise_regularizer",
    "pointwise_regularizer", "recurrent_regularizer", "embeddings_regularizer",
}


def pyplot():
    """`matplotlib.pyplot` on the non-interactive Agg canvas, with an install hint."""
    try:
        import matplotlib
    except ImportError as error:  # pragma: no cover - matplotlib is a dependency
        raise ImportError(
            "Plotting diagnostics needs matplotlib: `pip install matplotlib`."
        ) from error
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def new_figure(**kwargs):
    """A `matplotlib.figure.Figure` not registered with pyplot (no global state)."""
    pyplot()
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def check_compiled_model(model, name="model"):
    """A built keras.Model compiled with a single loss."""
    if not isinstance(model, keras.Model):
        raise _validation.type_error(name, "a keras.Model", model)
    if not getattr(model, "compiled", False) or getattr(model, "loss", None) is None:
        raise _validation.argument_error(
            name, "be compiled with a loss", model,
            "Call `model.compile(optimizer=..., loss=...)` before running a diagnostic.",
        )
    if isinstance(model.loss, (dict, list, tuple)):
        raise _validation.argument_error(
            f"{name}.loss", "be a single loss (one output)", model.loss,
            "The diagnostics analyse single-output models.",
        )
    if not model.built:
        raise _validation.argument_error(
            name, "be built", model,
            "Call the model once on a batch (or `model.build(input_shape)`) first.",
        )
    if not model.trainable_variables:
        raise _validation.argument_error(name, "have trainable variables", model)
    return model


def check_data(x, y, name_x="x", name_y="y"):
    """Numpy arrays with labels and matching first dimensions."""
    if x is None:
        raise _validation.argument_error(name_x, "be an array of inputs", x)
    if y is None:
        raise _validation.argument_error(
            name_y, "be an array of labels", y,
            "This diagnostic computes the loss, which needs the targets: pass `y`.",
        )
    x = np.asarray(x)
    y = np.asarray(y)
    if len(x) == 0 or len(x) != len(y):
        raise _validation.argument_error(
            name_y, f"have as many rows as `{name_x}` ({len(x)}) and at least one", f"{len(y)} rows",
        )
    return x, y


def check_dtype(dtype):
    return _validation.check_one_of("dtype", dtype, DTYPES)


def _is_float_policy(value):
    if isinstance(value, str):
        return value.startswith(("float", "bfloat", "mixed"))
    return isinstance(value, dict) and "DTypePolicy" in str(value.get("class_name", ""))


def _float64_config(config):
    """A model config with every floating dtype policy replaced by float64."""
    if isinstance(config, dict):
        result = {}
        for key, value in config.items():
            if key == "dtype" and _is_float_policy(value):
                result[key] = "float64"
            else:
                result[key] = _float64_config(value)
        return result
    if isinstance(config, list):
        return [_float64_config(item) for item in config]
    return config


def _custom_objects(model):
    """The model's own layer classes, so unregistered custom layers rebuild too."""
    objects = {}
    for layer in model._flatten_layers(include_self=True):
        objects[type(layer).__name__] = type(layer)
    return objects


def rebuild(model, transform=None):
    """A new model from ``transform(model.get_config())``, weights copied in."""
    try:
        config = model.get_config()
    except NotImplementedError as error:
        raise _validation.argument_error(
            "model", "be rebuildable from its config (Sequential, Functional, or "
            "a subclass implementing get_config)", type(model).__name__,
            "Implement `get_config`, or pass `dtype='float32'` to analyse the model itself.",
        ) from error
    config = copy.deepcopy(config)
    if transform is not None:
        config = transform(config)
    with keras.saving.custom_object_scope(_custom_objects(model)):
        clone = type(model).from_config(config)
    if not clone.built:
        clone.build(model.input_shape if hasattr(model, "input_shape") else None)
    if len(clone.weights) != len(model.weights):
        raise _validation.argument_error(
            "model", "rebuild with the same weights from its config", type(model).__name__,
            "Pass `dtype='float32'` to analyse the model itself.",
        )
    for target, source in zip(clone.weights, model.weights):
        target.assign(np.asarray(keras.ops.convert_to_numpy(source.value)).astype(
            target.dtype if "float" in str(target.dtype) else source.dtype
        ))
    return clone


def float64_loss(loss):
    """The compiled loss as a keras Loss computing in float64."""
    if isinstance(loss, keras.losses.Loss):
        config = dict(loss.get_config())
        config["dtype"] = "float64"
        try:
            return type(loss).from_config(config)
        except Exception as error:  # a custom Loss whose config cannot take dtype
            raise _validation.argument_error(
                "model.loss", "rebuild from its config with dtype='float64'", loss,
                "Pass `dtype='float32'`.",
            ) from error
    function = keras.losses.get(loss)
    if function is None or not callable(function):
        raise _validation.argument_error("model.loss", "be a Keras loss", loss)
    return _FunctionLoss(function, dtype="float64")


class _FunctionLoss(keras.losses.Loss):
    """A loss function (``fn(y_true, y_pred)``) as a Loss with a chosen dtype."""

    def __init__(self, fn, dtype):
        super().__init__(name=getattr(fn, "__name__", "loss"), dtype=dtype)
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


def analysis_model(model, dtype):
    """``(model_to_differentiate, loss_or_None)`` for the requested dtype."""
    if dtype == "float32":
        return model, None
    clone = rebuild(model, _float64_config)
    return clone, float64_loss(model.loss)


def as_float(x, dtype):
    """Floating arrays converted to ``dtype``; integer labels kept as they are."""
    x = np.asarray(x)
    return x.astype(dtype) if np.issubdtype(x.dtype, np.floating) else x


class Objective:
    """The loss as a function of a flat float vector of the trainable weights.

    The loss is the mean over ``x`` (in chunks of ``batch_size``), including
    regularization penalties; the model runs in inference mode unless
    ``training=True``. Counts gradient and Hessian-vector-product calls over
    the whole data (``num_gradients``, ``num_hvp``). With ``dtype="float64"``
    the copy is made, and every loss, gradient and Hessian-vector product is
    computed, inside `kerastrain._backend.float64_scope()`; nothing stays
    changed between calls.
    """

    def __init__(self, model, x, y, dtype="float64", batch_size=None, training=False):
        check_compiled_model(model)
        x, y = check_data(x, y)
        self.dtype = check_dtype(dtype)
        if batch_size is not None:
            _validation.check_integer("batch_size", batch_size, minimum=1)
        with self._scope():
            self._build(model, x, y, batch_size, training)

    def _scope(self):
        return _backend.float64_scope(enabled=self.dtype == "float64")

    def _build(self, model, x, y, batch_size, training):
        self.model, loss = analysis_model(model, self.dtype)
        self.shapes = [tuple(v.shape) for v in self.model.trainable_variables]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.paths = [v.path for v in model.trainable_variables]
        self.size = int(sum(self.sizes))
        self.theta = self.flatten(
            [keras.ops.convert_to_numpy(v.value) for v in self.model.trainable_variables]
        )
        self.non_trainable = [v.value for v in self.model.non_trainable_variables]
        step = len(x) if batch_size is None else batch_size
        self.batches = [
            (as_float(x[i:i + step], self.dtype), as_float(y[i:i + step], self.dtype))
            for i in range(0, len(x), step)
        ]
        self.weights = np.array([len(b[0]) for b in self.batches], dtype=np.float64) / len(x)
        self._value_and_grad = _backend.make_value_and_grad(self.model, loss, training=training)
        self._hvp = _backend.make_hvp(self.model, loss, training=training)
        self.num_gradients = 0
        self.num_hvp = 0

    def flatten(self, tensors):
        return np.concatenate(
            [np.asarray(keras.ops.convert_to_numpy(t), dtype=np.float64).ravel() for t in tensors]
        )

    def unflatten(self, vector):
        vector = np.asarray(vector, dtype=self.dtype)
        pieces, start = [], 0
        for shape, size in zip(self.shapes, self.sizes):
            pieces.append(vector[start:start + size].reshape(shape))
            start += size
        return pieces

    def split(self, vector):
        """A flat vector as ``{variable path: piece}``."""
        return dict(zip(self.paths, self.unflatten(vector)))

    def value_and_grad(self, theta=None, non_trainable=None):
        """``(loss, flat gradient)`` at ``theta`` (default: the model's weights)."""
        values = self.unflatten(self.theta if theta is None else theta)
        extra = self.non_trainable if non_trainable is None else non_trainable
        total, grad = 0.0, np.zeros(self.size)
        with self._scope():
            for weight, (xb, yb) in zip(self.weights, self.batches):
                loss, grads = self._value_and_grad(values, xb, yb, None, extra)
                total += weight * float(keras.ops.convert_to_numpy(loss))
                grad += weight * self.flatten(grads)
        self.num_gradients += 1
        return total, grad

    def loss(self, theta=None, non_trainable=None):
        return self.value_and_grad(theta, non_trainable)[0]

    def hvp(self, vector, theta=None):
        """The Hessian at ``theta`` (default: the model's weights) times ``vector``."""
        values = self.unflatten(self.theta if theta is None else theta)
        vectors = self.unflatten(vector)
        result = np.zeros(self.size)
        with self._scope():
            for weight, (xb, yb) in zip(self.weights, self.batches):
                result += weight * self.flatten(self._hvp(values, vectors, xb, yb))
        self.num_hvp += 1
        return result
