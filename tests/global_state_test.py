"""No hidden global state (DESIGN.md, decision 7).

Constructs every public object of kerastrain, runs every diagnostic, trains
with the optimizers that need the loss (`SAM`, `HessianFree`, after
`prepare(model)`), attaches the statistics callbacks to a plain Keras
optimizer and writes TensorBoard events; then checks that the process is as
before: ``keras.Model``'s (and its base classes') ``train_step``, JAX's
64-bit flag, Keras's dtype tables, floatx and dtype policy, and
``sys.modules`` (no entry replaced or removed, no fake module left; a second
round adds no module at all).
"""

import copy
import importlib
import inspect
import sys

import keras
import numpy as np
import pytest

import kerastrain
from kerastrain import (
    callbacks,
    diagnostics,
    initializers,
    layers,
    optimizers,
    regularizers,
    schedules,
)
from kerastrain.optimizers import transforms
from kerastrain.tensorboard import SummaryWriter

_DTYPES = importlib.import_module("keras.src.backend.common.dtypes")
PACKAGES = (optimizers, transforms, schedules, initializers, regularizers, layers, callbacks)


def _trainer_steps():
    """``train_step`` (and ``make_train_function``) of keras.Model and each base class."""
    return {
        (klass.__qualname__, name): klass.__dict__[name]
        for klass in keras.Model.__mro__
        for name in ("train_step", "make_train_function")
        if name in klass.__dict__
    }


def _dtype_tables():
    return {name: copy.deepcopy(value) for name, value in vars(_DTYPES).items()
            if isinstance(value, (dict, list, tuple, set, frozenset)) and not name.startswith("__")}


def _x64():
    if keras.config.backend() != "jax":
        return None
    import jax

    return bool(jax.config.jax_enable_x64)


def _process_state():
    return {
        "train_step": _trainer_steps(),
        "x64": _x64(),
        "dtype_tables": _dtype_tables(),
        "floatx": keras.config.floatx(),
        "dtype_policy": keras.config.dtype_policy().name,
        "float64_tensor": keras.backend.standardize_dtype(
            keras.ops.convert_to_tensor(np.ones(2)).dtype),
    }


def _is_marker(module):
    """An empty module object put into sys.modules by hand (not imported from anywhere).

    Native extensions register submodules without a spec too, but those hold
    functions; a marker such as tensorboard's ``tensorboard.compat.notf`` holds
    nothing.
    """
    return (getattr(module, "__spec__", None) is None
            and getattr(module, "__file__", None) is None
            and not [name for name in vars(module) if not name.startswith("__")])


def _arguments(tmp_path, x):
    """Values for the required constructor arguments, by name."""
    return {
        "optimizer": lambda: keras.optimizers.SGD(0.1),
        "transforms": lambda: [transforms.Momentum(), transforms.ScaleByLearningRate()],
        "clip_norm": lambda: 1.0, "clip_value": lambda: 1.0, "weight_decay": lambda: 1e-4,
        "learning_rate": lambda: 0.1, "initial_learning_rate": lambda: 0.1,
        "maximal_learning_rate": lambda: 1.0, "final_learning_rate": lambda: 0.01,
        "first_decay_steps": lambda: 10, "decay_steps": lambda: 10, "decay_rate": lambda: 0.5,
        "step_size": lambda: 4, "scale_fn": lambda: (lambda cycle: 1.0),
        "milestones": lambda: [2, 4], "total_steps": lambda: 10, "warmup_steps": lambda: 2,
        "boundaries": lambda: [5], "values": lambda: [0.1, 0.01],
        "schedule": lambda: schedules.Constant(0.1),
        "schedules": lambda: [schedules.Constant(0.1), schedules.Constant(0.01)],
        "n_components": lambda: 2, "rate": lambda: 0.5, "num_units": lambda: 2,
        "layer": lambda: keras.layers.Dense(2),
        "probe_data": lambda: x, "log_dir": lambda: str(tmp_path / "constructed"),
        # the transform protocol's declarations (Slot, Hyperparameter) and Scaled
        "name": lambda: "rate", "description": lambda: "a rate", "updates": lambda: 1.0,
        "factor": lambda: 2.0,
    }


def construct_every_public_object(tmp_path, x):
    """One instance of every public class of the kerastrain packages; returns them."""
    values, made = _arguments(tmp_path, x), []
    for package in PACKAGES:
        for name in package.__all__:
            klass = getattr(package, name)
            if not inspect.isclass(klass) or issubclass(klass, BaseException) or hasattr(
                    klass, "__members__"):  # exceptions, warnings and enums: no behaviour
                continue
            parameters = list(inspect.signature(klass.__init__).parameters.values())[1:]
            required = [p.name for p in parameters if p.default is p.empty
                        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            missing = [p for p in required if p not in values]
            assert not missing, f"add a value for {klass.__name__}'s {missing} to _arguments"
            made.append(klass(**{p: values[p]() for p in required}))
    made.append(optimizers.SAM(keras.optimizers.SGD(0.1), adaptive=True))
    made.append(optimizers.HessianFree(saddle_free=True))
    made.append(callbacks.monitor(str(tmp_path / "monitor"), x))
    return made


def _model(optimizer="sgd", seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((3,)), keras.layers.Dense(4, activation="tanh"),
        keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def run_every_diagnostic(x, y):
    model, other = _model(), _model(seed=1)
    d = diagnostics
    return [
        d.gradient_check(model, x, y, num_coordinates=1, seed=0),
        d.hessian_eigenvalues(model, x, y, k=1, max_iterations=40, seed=0),
        d.hessian_trace(model, x, y, num_probes=2, seed=0),
        d.hessian_density(model, x, y, num_runs=1, num_iterations=4, num_points=16, seed=0),
        d.critical_point(model, x, y, num_runs=1, num_iterations=4, max_iterations=40, seed=0),
        d.loss_landscape_1d(model, x, y, num_points=3, seed=0),
        d.loss_landscape_2d(model, x, y, num_points=3, seed=0),
        d.interpolate(model, other, x, y, num_points=3),
        d.sharpness(model, x, y, max_iterations=1, seed=0),
        d.lr_range_test(_model(), x, y, num_steps=4, batch_size=8, seed=0),
        d.sanity_check(_model(), x, y, num_samples=4, max_steps=2, seed=0),
    ]


def train_and_attach(tmp_path, x, y):
    for optimizer in (optimizers.SAM(keras.optimizers.SGD(0.1)), optimizers.HessianFree()):
        model = optimizers.prepare(_model(optimizer))
        model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    plain = keras.optimizers.Adam()
    model = _model(plain)
    compile_config = dict(model._compile_config.config)
    for callback in (callbacks.GradientNormLogger(), callbacks.UpdateRatioLogger()):
        with pytest.raises(ValueError, match=r"monitored\("):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    assert model.optimizer is plain
    assert model._compile_config.config == compile_config
    with SummaryWriter(str(tmp_path / "events")) as writer:
        writer.scalar("loss", 0.5, step=0)
        writer.histogram("weights", x, step=0)


def one_round(tmp_path, x, y, before):
    """Each phase, then a check that the process state is still ``before``."""
    for phase in (lambda: construct_every_public_object(tmp_path, x),
                  lambda: run_every_diagnostic(x, y),
                  lambda: train_and_attach(tmp_path, x, y)):
        phase()
        assert _process_state() == before


@pytest.mark.slow
def test_public_objects_and_diagnostics_leave_the_process_unchanged(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    y = rng.integers(0, 2, size=16)
    before, modules = _process_state(), dict(sys.modules)
    one_round(tmp_path, x, y, before)
    assert "tensorboard.compat.notf" not in sys.modules
    for name, module in modules.items():  # nothing replaced or removed
        assert sys.modules.get(name) is module, name
    added = {name: sys.modules[name] for name in set(sys.modules) - set(modules)}
    assert not [name for name, module in added.items() if _is_marker(module)]
    # Everything imported lazily is imported now: a second round adds nothing at all.
    modules = dict(sys.modules)
    one_round(tmp_path, x, y, before)
    assert set(sys.modules) == set(modules)
    assert all(sys.modules[name] is module for name, module in modules.items())
    assert kerastrain.__version__
