"""The chapter's search space as a ready KerasTuner hypermodel.

`MLPHyperModel` samples the hyperparameters section 4.6 lists: number of
layers, units per layer, activation (ReLU, leaky ReLU, ELU, tanh, maxout),
initializer, optimizer with a log-uniform learning rate, learning-rate
schedule, L2 coefficient (log-uniform), dropout rate, batch normalization on
or off, and minibatch size. Every model it builds is made of registered Keras
(or kerastrain) objects only, so it saves to ``.keras`` and loads back without
``custom_objects``.

The names users write (``"adam"``, ``"he_normal"``, ``"maxout"``, ...) are
turned into objects by the small mappings below: this is the one place that
decides which optimizer, schedule, initializer and maxout layer a name means.
"""

from __future__ import annotations

import keras
import keras_tuner

from kerastrain import _validation
from kerastrain.tuning._choices import ACTIVATIONS, INITIALIZERS, OPTIMIZERS, SCHEDULES

MAXOUT_PIECES = 2


def make_optimizer(name, learning_rate):
    """The kerastrain optimizer preset called ``name`` (Keras argument names).

    Gradient statistics recording is off: a search trial has no monitor reading it.
    """
    from kerastrain import optimizers

    _validation.check_one_of("optimizer", name, OPTIMIZERS)
    options = {"learning_rate": learning_rate, "record_statistics": False}
    if name == "sgd":
        return optimizers.SGD(**options)
    if name == "momentum":
        return optimizers.SGD(momentum=0.9, **options)
    if name == "nesterov":
        return optimizers.SGD(momentum=0.9, nesterov=True, **options)
    classes = {
        "adagrad": optimizers.Adagrad, "adadelta": optimizers.Adadelta,
        "rmsprop": optimizers.RMSprop, "adam": optimizers.Adam, "adamw": optimizers.AdamW,
    }
    return classes[name](**options)


def make_schedule(name, initial_learning_rate, decay_steps):
    """A learning-rate schedule (or the constant rate itself for ``"constant"``).

    ``decay_steps`` is the number of optimizer steps of one period (one epoch's
    steps in the hypermodel): exponential a0 e^(-0.1 t/d), inverse time
    a0 / (1 + 0.5 t/d), step a0 0.5^floor(t/d), cosine over 20 periods.
    """
    from kerastrain import schedules

    _validation.check_one_of("schedule", name, SCHEDULES)
    if name == "constant":
        return initial_learning_rate
    if name == "exponential":
        return schedules.NaturalExponentialDecay(initial_learning_rate, 0.1, decay_steps)
    if name == "inverse_time":
        return schedules.InverseTimeDecay(initial_learning_rate, 0.5, decay_steps)
    if name == "step":
        return schedules.StepDecay(initial_learning_rate, step_size=decay_steps, gamma=0.5)
    return keras.optimizers.schedules.CosineDecay(initial_learning_rate, decay_steps * 20)


def make_initializer(name, seed=None):
    """The initializer called ``name`` (``"gaussian"`` is the chapter's N(0, 0.01²))."""
    from kerastrain import initializers

    _validation.check_one_of("initializer", name, INITIALIZERS)
    if name == "gaussian":
        return initializers.RandomNormal(stddev=0.01, seed=seed)
    classes = {
        "glorot_uniform": initializers.GlorotUniform, "glorot_normal": initializers.GlorotNormal,
        "he_normal": initializers.HeNormal, "he_uniform": initializers.HeUniform,
        "lecun_normal": initializers.LeCunNormal, "lecun_uniform": initializers.LeCunUniform,
        "orthogonal": initializers.Orthogonal,
    }
    return classes[name](seed=seed)


def apply_activation(x, name, units, initializer, regularizer, index):
    """A hidden layer of ``units`` units with activation ``name``.

    Maxout (Goodfellow et al., 2013) takes the maximum of ``MAXOUT_PIECES``
    affine pieces per unit: a Dense layer of ``units * pieces`` outputs followed
    by `kerastrain.layers.Maxout(units)`: unit ``j`` is ``max_i z[i * units + j]``.
    """
    from kerastrain.layers import Maxout

    layers = keras.layers
    if name != "maxout":
        return layers.Dense(units, activation=name, kernel_initializer=initializer,
                            kernel_regularizer=regularizer, name=f"dense_{index}")(x)
    x = layers.Dense(units * MAXOUT_PIECES, kernel_initializer=initializer,
                     kernel_regularizer=regularizer, name=f"dense_{index}")(x)
    return Maxout(units, name=f"maxout_{index}")(x)


def _check_choices(name, values, allowed=None):
    """A non-empty list of choices (each one of ``allowed`` when given)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise _validation.type_error(name, "a list of choices", values)
    if not values:
        raise _validation.argument_error(
            name, "be a non-empty list of choices", values,
            "An empty choice leaves nothing to search: list at least one value.",
        )
    if allowed is not None:
        for value in values:
            _validation.check_one_of(name, value, allowed)
    return list(values)


def _check_range(name, values, low=None, high=None, positive=False):
    """A ``[min, max]`` pair of numbers with ``min <= max``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise _validation.type_error(name, "a [min, max] list of two numbers", values)
    if len(values) != 2:
        raise _validation.argument_error(name, "be a [min, max] list of two numbers", values)
    lo, hi = (_validation.check_finite_number(name, value) for value in values)
    if lo > hi:
        raise _validation.argument_error(name, "have min <= max", values)
    if positive and lo <= 0:
        raise _validation.argument_error(
            name, "have min > 0", values, "It is sampled on a log scale.")
    for bound in (lo, hi):
        if low is not None and high is not None:
            _validation.check_in_range(name, bound, low, high)
    return lo, hi


@keras.saving.register_keras_serializable(package="kerastrain")
class MLPHyperModel(keras_tuner.HyperModel):
    """The chapter's multilayer-perceptron search space (section 4.6).

    Samples, per trial: ``layers`` hidden layers, ``units_i`` per layer,
    ``activation``, ``initializer``, ``optimizer`` with ``learning_rate``
    drawn log-uniformly from ``[min, max]``, ``schedule``, ``l2`` drawn
    log-uniformly (0 when ``l2=[0, 0]``), ``dropout`` uniformly,
    ``batch_norm`` and ``batch_size``. A range whose min equals its max is
    fixed, not searched.

    Args:
        input_shape: shape of one example, e.g. ``(64,)``.
        num_classes: number of classes (softmax output, sparse categorical
            cross-entropy, accuracy), or ``None`` for regression (one linear
            output, mean squared error).
        layers: ``[min, max]`` number of hidden layers (default ``[1, 3]``).
        units: choices of units per hidden layer (default ``[32, 64, 128, 256]``).
        activations: choices among relu, leaky_relu, elu, tanh, sigmoid, maxout.
        initializers: choices among glorot_uniform, glorot_normal, he_normal,
            he_uniform, lecun_normal, lecun_uniform, orthogonal, gaussian.
        optimizers: choices among sgd, momentum, nesterov, adagrad, adadelta,
            rmsprop, adam, adamw.
        learning_rate: ``[min, max]``, sampled log-uniformly (default ``[3e-4, 3e-2]``).
        learning_rate_step: ``None`` (continuous) or a factor > 1 giving a
            log grid ``min, min*step, ...`` (for grid search).
        schedules: choices among constant, exponential, inverse_time, cosine, step.
        l2: ``[min, max]`` L2 coefficient, log-uniform; ``[0, 0]`` turns L2 off.
        dropout: ``[min, max]`` dropout rate in [0, 1).
        batch_norm: choices among ``False`` / ``True``.
        batch_sizes: choices of minibatch size (default ``[32, 64, 128]``).
        decay_steps: optimizer steps per decay period of the schedules.
        steps_per_execution: batches per compiled call (`Model.compile`).

    Example:

        hypermodel = MLPHyperModel(input_shape=(64,), num_classes=10)
        tuner = create_tuner("random", hypermodel, max_trials=10)
    """

    def __init__(self, input_shape, num_classes=None, layers=(1, 3), units=(32, 64, 128, 256),
                 activations=("relu", "leaky_relu", "elu", "tanh", "maxout"),
                 initializers=("glorot_uniform", "he_normal", "lecun_normal", "orthogonal"),
                 optimizers=("momentum", "nesterov", "rmsprop", "adam"),
                 learning_rate=(3e-4, 3e-2), learning_rate_step=None,
                 schedules=("constant", "exponential", "inverse_time", "cosine"),
                 l2=(1e-6, 1e-3), dropout=(0.0, 0.3), batch_norm=(False, True),
                 batch_sizes=(32, 64, 128), decay_steps=100, steps_per_execution=1, name=None,
                 tunable=True):
        super().__init__(name=name, tunable=tunable)
        if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, (list, tuple)):
            raise _validation.type_error("input_shape", "a shape (tuple of integers)", input_shape)
        self.input_shape = tuple(_validation.check_integer("input_shape", dim, minimum=1)
                                 for dim in input_shape)
        if num_classes is not None:
            num_classes = _validation.check_integer("num_classes", num_classes, minimum=2)
        self.num_classes = num_classes
        _check_range("layers", layers)
        self.layers = [_validation.check_integer("layers", v, minimum=1) for v in layers]
        self.units = [_validation.check_integer("units", v, minimum=1)
                      for v in _check_choices("units", units)]
        self.activations = _check_choices("activations", activations, ACTIVATIONS)
        self.initializers = _check_choices("initializers", initializers, INITIALIZERS)
        self.optimizers = _check_choices("optimizers", optimizers, OPTIMIZERS)
        self.learning_rate = list(_check_range("learning_rate", learning_rate, positive=True))
        if learning_rate_step is not None:
            learning_rate_step = _validation.check_finite_number(
                "learning_rate_step", learning_rate_step)
            if learning_rate_step <= 1:
                raise _validation.argument_error(
                    "learning_rate_step", "be > 1 (a multiplicative step) or None",
                    learning_rate_step)
        self.learning_rate_step = learning_rate_step
        self.schedules = _check_choices("schedules", schedules, SCHEDULES)
        self.l2 = list(_check_range("l2", l2))
        if self.l2[1] > 0 and self.l2[0] <= 0:
            raise _validation.argument_error(
                "l2", "be [0, 0] (off) or have min > 0", l2, "It is sampled on a log scale.")
        self.dropout = list(_check_range("dropout", dropout, 0.0, 0.99))
        self.batch_norm = [_validation.check_type("batch_norm", v, bool, "a list of booleans")
                           for v in _check_choices("batch_norm", batch_norm)]
        self.batch_sizes = [_validation.check_integer("batch_sizes", v, minimum=1)
                            for v in _check_choices("batch_sizes", batch_sizes)]
        self.decay_steps = _validation.check_integer("decay_steps", decay_steps, minimum=1)
        self.steps_per_execution = _validation.check_integer(
            "steps_per_execution", steps_per_execution, minimum=1)

    def get_config(self):
        return {
            "input_shape": list(self.input_shape), "num_classes": self.num_classes,
            "layers": list(self.layers), "units": list(self.units),
            "activations": list(self.activations), "initializers": list(self.initializers),
            "optimizers": list(self.optimizers), "learning_rate": list(self.learning_rate),
            "learning_rate_step": self.learning_rate_step, "schedules": list(self.schedules),
            "l2": list(self.l2), "dropout": list(self.dropout),
            "batch_norm": list(self.batch_norm), "batch_sizes": list(self.batch_sizes),
            "decay_steps": self.decay_steps, "steps_per_execution": self.steps_per_execution,
            "name": self.name, "tunable": self.tunable,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @staticmethod
    def _choice(hp, name, values):
        return values[0] if len(values) == 1 else hp.Choice(name, values)

    def build(self, hp):
        """A compiled model for the hyperparameters ``hp`` samples."""
        low, high = self.layers
        depth = low if low == high else hp.Int("layers", low, high)
        activation = self._choice(hp, "activation", self.activations)
        initializer_name = self._choice(hp, "initializer", self.initializers)
        l2 = self._float(hp, "l2", self.l2, log=True)
        rate = self._float(hp, "dropout", self.dropout, log=False)
        batch_norm = self._choice(hp, "batch_norm", self.batch_norm)
        self._choice(hp, "batch_size", self.batch_sizes)  # declared here, so the space is whole
        regularizer = keras.regularizers.L2(l2) if l2 > 0 else None
        inputs = keras.Input(shape=self.input_shape, name="inputs")
        x = keras.layers.Flatten(name="flatten")(inputs) if len(self.input_shape) > 1 else inputs
        widths = self._widths(hp)
        for index in range(depth):
            units = widths[index]
            initializer = make_initializer(initializer_name)
            x = apply_activation(x, activation, units, initializer, regularizer, index)
            if batch_norm:
                x = keras.layers.BatchNormalization(name=f"batch_norm_{index}")(x)
            if rate > 0:
                x = keras.layers.Dropout(rate, name=f"dropout_{index}")(x)
        # Keras's default Glorot uniform, as kerastrain's (on JAX one random program per
        # size class instead of one per width: the space builds dozens of widths).
        output_initializer = make_initializer("glorot_uniform")
        if self.num_classes is None:
            outputs = keras.layers.Dense(1, kernel_initializer=output_initializer,
                                         name="outputs")(x)
            loss, metrics = "mean_squared_error", ["mean_absolute_error"]
        else:
            outputs = keras.layers.Dense(self.num_classes, activation="softmax",
                                         kernel_initializer=output_initializer, name="outputs")(x)
            loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
        model = keras.Model(inputs, outputs, name="mlp")
        model.compile(optimizer=self._optimizer(hp), loss=loss, metrics=metrics,
                      steps_per_execution=self.steps_per_execution)
        return model

    def _widths(self, hp):
        """``units_i`` of every possible layer, each in the scope of the depths that use it.

        Declared conditionally (KerasTuner's ``conditional_scope`` on ``layers``),
        so the whole space is known before the first trial: every trial's
        ``units_i`` is sampled from the start (one trial or many at a time alike),
        and an inactive ``units_i`` is ``None``, not a value that means nothing.
        """
        low, high = self.layers
        widths = []
        for index in range(high):
            if low == high or index < low:
                widths.append(self._choice(hp, f"units_{index}", self.units))
                continue
            with hp.conditional_scope("layers", list(range(index + 1, high + 1))):
                widths.append(self._choice(hp, f"units_{index}", self.units))
        return widths

    def _float(self, hp, name, bounds, log):
        low, high = bounds
        if low == high:
            return low
        return hp.Float(name, low, high, sampling="log" if log else "linear")

    def _optimizer(self, hp):
        name = self._choice(hp, "optimizer", self.optimizers)
        low, high = self.learning_rate
        if low == high:
            learning_rate = low
        else:
            learning_rate = hp.Float("learning_rate", low, high, sampling="log",
                                     step=self.learning_rate_step)
        schedule = self._choice(hp, "schedule", self.schedules)
        return make_optimizer(name, make_schedule(schedule, learning_rate, self.decay_steps))

    def fit(self, hp, model, *args, **kwargs):
        """`model.fit` with the sampled ``batch_size``."""
        kwargs["batch_size"] = self._choice(hp, "batch_size", self.batch_sizes)
        return model.fit(*args, **kwargs)


def hypermodel_from_function(build_fn):
    """Wrap a user's ``build(hp) -> compiled keras.Model`` as a KerasTuner hypermodel."""
    if isinstance(build_fn, keras_tuner.HyperModel):
        return build_fn
    if not callable(build_fn):
        raise _validation.type_error(
            "build_fn", "a callable build(hp) returning a compiled keras.Model, "
            "or a keras_tuner.HyperModel", build_fn)
    return build_fn  # KerasTuner wraps a plain build(hp) itself
