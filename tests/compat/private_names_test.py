"""Every private Keras / KerasTuner name kerastrain uses (`kerastrain._compat`) still exists.

Each check is one test named after the private name, so a Keras or KerasTuner
release that drops or renames one fails here, by name, before anything else.
Attributes are checked on real instances (optimizers, models, metrics, an
oracle), methods with the parameters kerastrain passes or overrides.
"""

import importlib
import inspect

import keras
import numpy as np
import pytest

from kerastrain import _compat


def _parameters(function):
    return tuple(inspect.signature(function).parameters)


def _missing(owner, name):
    return (f"{owner} has no `{name}` in the installed version; kerastrain._compat was "
            f"checked on keras {_compat.KERAS_CHECKED} / keras-tuner "
            f"{_compat.KERAS_TUNER_CHECKED}: update the accessor that uses it.")


@pytest.fixture(scope="module")
def built_optimizer():
    variable = keras.Variable(np.ones((2,), "float32"), name="w")
    optimizer = keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.01)
    optimizer.exclude_from_weight_decay(var_names=["excluded"])
    optimizer.build([variable])
    return optimizer, variable


@pytest.fixture(scope="module")
def model():
    inputs = keras.Input((3,))
    inner = keras.Sequential([keras.layers.Dense(2, name="inner_dense")], name="inner")
    outputs = keras.layers.Dense(1, name="head")(inner(inputs))
    return keras.Model(inputs, outputs)


# -- Keras -------------------------------------------------------------------
KERAS_OPTIMIZER_ATTRIBUTES = ["_trainable_variables", "_variables", "_iterations",
                              "_learning_rate"]


@pytest.mark.parametrize("name", KERAS_OPTIMIZER_ATTRIBUTES)
def test_keras_optimizer_attribute(name, built_optimizer):
    optimizer, variable = built_optimizer
    assert hasattr(optimizer, name), _missing("keras.optimizers.Optimizer", name)


def test_keras_optimizer_accessors(built_optimizer):
    optimizer, variable = built_optimizer
    assert [id(v) for v in _compat.optimizer_trainable_variables(optimizer)] == [id(variable)]
    assert _compat.optimizer_iterations(optimizer) is optimizer.iterations
    own = [id(v) for v in _compat.optimizer_own_variables(optimizer)]
    assert own == [id(v) for v in optimizer.variables]
    assert _compat.variable_index(optimizer, variable) == 0
    assert isinstance(_compat.learning_rate_object(optimizer), keras.Variable)
    assert _compat.use_weight_decay(optimizer, variable) is True
    excluded = keras.Variable(np.ones((2,), "float32"), name="excluded")
    assert _compat.use_weight_decay(optimizer, excluded) is False


@pytest.mark.parametrize("name,parameters", [
    ("_get_variable_index", ("self", "variable")),
    ("_use_weight_decay", ("self", "variable")),
    *[(hook, params) for hook, (_, params) in _compat.OPTIMIZER_HOOKS.items()],
])
def test_keras_optimizer_method(name, parameters):
    method = getattr(keras.optimizers.Optimizer, name, None)
    assert method is not None, _missing("keras.optimizers.Optimizer", name)
    assert _parameters(method) == parameters, (
        f"keras.optimizers.Optimizer.{name} now takes {_parameters(method)}, "
        f"kerastrain expects {parameters}")


@pytest.mark.parametrize("name", ["_flatten_layers", "_call_has_training_arg",
                                  "_losses_override", "_symbolic_build"])
def test_keras_model_attribute(name, model):
    assert hasattr(model, name), _missing("keras.Model", name)


def test_keras_model_accessors(model):
    inner = model.get_layer("inner")
    dense, head = inner.get_layer("inner_dense"), model.get_layer("head")
    every = [id(layer) for layer in _compat.flatten_layers(model)]
    assert {id(inner), id(dense), id(head)} <= set(every) and id(model) not in every
    assert id(model) in [id(layer) for layer in
                         _compat.flatten_layers(model, include_self=True)]
    top = [id(layer) for layer in _compat.flatten_layers(model, recursive=False)]
    assert id(inner) in top and id(dense) not in top
    assert _compat.call_has_training_arg(model) is True
    extra = [keras.ops.ones(())]
    with _compat.losses_override(model, extra):
        assert model._losses_override == extra
    assert model._losses_override == []


def test_keras_symbolic_build_creates_what_fit_needs():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    assert not model.optimizer.built
    _compat.symbolic_build(model, (np.zeros((4, 3), "float32"), np.zeros((4, 2), "float32")))
    assert model.optimizer.built and len(model.optimizer.variables) > 0
    assert len(model.metrics_variables) > 0


@pytest.mark.parametrize("metric,direction", [
    ("accuracy", "max"), ("auc", "max"), ("mean_squared_error", "min"),
    ("r2_score", "max"),
])
def test_keras_metric_direction(metric, direction):
    instance = keras.metrics.get(metric)
    assert hasattr(instance, "_direction"), _missing(type(instance).__name__, "_direction")
    assert _compat.metric_direction(instance) == direction
    assert _compat.metric_direction(object()) is None


def test_keras_dtype_promotion_table():
    module = importlib.import_module(_compat._DTYPES_MODULE)
    assert hasattr(module, "BIT64_TO_BIT32_DTYPE"), _missing(_compat._DTYPES_MODULE,
                                                             "BIT64_TO_BIT32_DTYPE")
    # float32 on JAX / torch (float64 on TensorFlow): the entry float64_promotion edits.
    assert "float64" in _compat.bit64_to_bit32_table()


# -- KerasTuner ----------------------------------------------------------------
kt = pytest.importorskip("keras_tuner")


@pytest.fixture
def oracle(tmp_path):
    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("score", "max"),
                                           max_trials=2, seed=1)
    oracle._set_project_dir(str(tmp_path), "project")
    return oracle


@pytest.mark.parametrize("name", ["_retry_queue", "start_order", "end_order",
                                  "_project_dir"])
def test_keras_tuner_oracle_attribute(name, oracle):
    assert hasattr(oracle, name), _missing("keras_tuner.Oracle", name)


@pytest.mark.parametrize("name,parameters", [
    ("_get_oracle_fname", ("self",)),
    ("_get_trial_dir", ("self", "trial_id")),
    ("_save_trial", ("self", "trial")),
    ("_check_consecutive_failures", ("self",)),
])
def test_keras_tuner_oracle_method(name, parameters):
    method = getattr(kt.Oracle, name, None)
    assert method is not None, _missing("keras_tuner.Oracle", name)
    assert _parameters(method) == parameters


def test_keras_tuner_oracle_accessors(oracle, tmp_path):
    project = str(tmp_path / "project")
    assert _compat.oracle_project_dir(oracle) == project
    assert _compat.oracle_file(oracle) == str(tmp_path / "project" / "oracle.json")
    assert _compat.oracle_trial_dir(oracle, "07") == str(tmp_path / "project" / "trial_07")
    assert _compat.retry_queue(oracle) is oracle._retry_queue == []
    trial = oracle.create_trial("tuner0")
    assert _compat.start_order(oracle) == [trial.trial_id]
    oracle.update_trial(trial.trial_id, {"score": 1.0})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert _compat.end_order(oracle) == [trial.trial_id]


def test_keras_tuner_oracle_hooks_are_routed(tmp_path):
    """KerasTuner still calls the private hooks through ``self``: the named methods run."""
    calls = []

    class Mixin(_compat.OracleHooks):
        def write_trial_state(self, trial):
            calls.append(("write", trial.trial_id))

        def check_consecutive_failures(self):
            calls.append(("check",))

    cls = _compat.mixin_class("Routed", Mixin, kt.oracles.RandomSearchOracle)
    assert cls.__module__ == Mixin.__module__ and cls.__name__ == "Routed"
    routed = cls(objective=kt.Objective("score", "max"), max_trials=2, seed=1)
    routed._set_project_dir(str(tmp_path), "routed")
    trial = routed.create_trial("tuner0")
    trial.status = "COMPLETED"
    routed.update_trial(trial.trial_id, {"score": 1.0})
    routed.end_trial(trial)
    assert ("write", trial.trial_id) in calls and ("check",) in calls
    assert set(_compat.ORACLE_HOOKS) <= set(vars(_compat.OracleHooks))


@pytest.mark.parametrize("owner,name,parameters", [
    ("BaseTuner", "_try_run_and_update_trial", ("self", "trial", "fit_args", "fit_kwargs")),
    ("BaseTuner", "_run_and_update_trial", ("self", "trial", "fit_args", "fit_kwargs")),
    ("BaseTuner", "_get_tuner_fname", ("self",)),
    ("Tuner", "_try_build", ("self", "hp")),
    ("Tuner", "_build_hypermodel", ("self", "hp")),
    ("Tuner", "_deepcopy_callbacks", ("self", "callbacks")),
    ("Tuner", "_get_checkpoint_fname", ("self", "trial_id")),
    ("Tuner", "_get_build_config_fname", ("self", "trial_id")),
])
def test_keras_tuner_tuner_method(owner, name, parameters):
    from keras_tuner.src.engine import base_tuner

    cls = base_tuner.BaseTuner if owner == "BaseTuner" else kt.Tuner
    method = getattr(cls, name, None)
    assert method is not None, _missing(f"keras_tuner {owner}", name)
    assert _parameters(method) == parameters


def test_keras_tuner_tuner_hook_is_called_through_self():
    from keras_tuner.src.engine import base_tuner

    source = inspect.getsource(base_tuner.BaseTuner.search)
    for hook in _compat.TUNER_HOOKS:
        assert f"self.{hook}(" in source, f"BaseTuner.search no longer calls self.{hook}"


def test_keras_tuner_hyperband_init_only_makes_an_oracle():
    """`tuner_with_oracle` skips Hyperband.__init__: it must still do nothing else."""
    source = inspect.getsource(kt.Hyperband.__init__)
    body = source[source.index("):\n"):]
    assert body.count("self.") == 0, "Hyperband.__init__ now sets attributes itself"
    assert "super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)" in source


def test_keras_tuner_tuner_with_oracle(tmp_path, oracle):
    tuner = _compat.tuner_with_oracle(kt.Hyperband, oracle, hypermodel=lambda hp: None,
                                      directory=str(tmp_path), project_name="hb")
    assert tuner.oracle is oracle and isinstance(tuner, kt.Hyperband)
    assert _compat.tuner_file(tuner).startswith(str(tmp_path))
    assert _compat.checkpoint_file(tuner, "00").startswith(str(tmp_path / "hb" / "trial_00"))
    assert _compat.build_config_file(tuner, "00").endswith("build_config.json")


def test_keras_tuner_hyperparameters_retrieve():
    hp = kt.HyperParameters()
    assert hasattr(hp, "_retrieve"), _missing("keras_tuner.HyperParameters", "_retrieve")
    seen = []
    with _compat.record_retrievals(hp, lambda h: seen.append(h.name)):
        hp.Int("units", 1, 4)
    hp.Float("rate", 0.1, 0.2)
    assert seen == ["units"]
    assert "_retrieve" not in vars(hp)


@pytest.mark.parametrize("module,name", [
    ("keras_tuner.src.engine.tuner_utils", "SaveBestEpoch"),
    ("keras_tuner.src.backend.config", "multi_backend"),
    ("keras_tuner.src.utils", "save_json"),
    ("keras_tuner.src.config", "DEBUG"),
    ("keras_tuner.src.distribute.utils", "has_chief_oracle"),
    ("keras_tuner.src.distribute.utils", "is_chief_oracle"),
    ("keras_tuner.src.distribute.oracle_chief", "OracleServicer"),
    ("keras_tuner.src.distribute.oracle_chief", "exit_chief"),
    ("keras_tuner.src.distribute.oracle_client", "TIMEOUT"),
    ("keras_tuner.src.protos", "get_service_grpc"),
    ("keras_tuner.engine.trial", "TrialStatus"),
    ("keras_tuner.engine.metrics_tracking", "infer_metric_direction"),
])
def test_keras_tuner_module_name(module, name):
    try:
        imported = importlib.import_module(module)
    except ImportError as error:
        pytest.fail(f"kerastrain._compat imports {module}, which is gone: {error}")
    assert hasattr(imported, name), _missing(module, name)


def test_keras_tuner_save_best_epoch_signature():
    from keras_tuner.src.engine import tuner_utils

    assert _parameters(tuner_utils.SaveBestEpoch.__init__) == ("self", "objective", "filepath")


def test_keras_tuner_client_timeout_is_scoped():
    from keras_tuner.src.distribute import oracle_client

    before = oracle_client.TIMEOUT
    with _compat.client_timeout(7):
        assert oracle_client.TIMEOUT == 7.0
    assert before == oracle_client.TIMEOUT
    with pytest.raises(RuntimeError), _compat.client_timeout(3):
        raise RuntimeError("worker crashed")
    assert before == oracle_client.TIMEOUT
    assert "timeout=TIMEOUT" in inspect.getsource(oracle_client.OracleClient), (
        "OracleClient no longer reads the module TIMEOUT at each call")


_SEED_SCRIPT = """
import random, sys
import keras, numpy as np
from kerastrain import _compat

def draws():
    return [random.random(), float(np.random.rand()),
            *np.asarray(keras.random.uniform((3,))).tolist(),
            *np.asarray(keras.initializers.GlorotUniform()((2, 2))).ravel().tolist()]

_compat.set_random_seed(7)
ours = draws()
imported = "tensorflow" in sys.modules
keras.utils.set_random_seed(7)
print(repr((imported, ours == draws(), ours)))
"""


@pytest.mark.backend_independent  # starts its own process on each named backend
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_set_random_seed_without_tensorflow(backend):
    """Same draws (Python, NumPy, Keras's global SeedGenerator, an initializer) as
    `keras.utils.set_random_seed`, without importing TensorFlow (a fresh process:
    this one has it imported)."""
    import ast
    import os
    import subprocess
    import sys

    env = dict(os.environ, KERAS_BACKEND=backend)
    completed = subprocess.run([sys.executable, "-c", _SEED_SCRIPT], env=env,
                               capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr[-2000:]
    imported, same, ours = ast.literal_eval(completed.stdout.strip().splitlines()[-1])
    assert not imported
    assert same, ours


def test_keras_set_random_seed_with_tensorflow_imported():
    import tensorflow as tf

    _compat.set_random_seed(11)
    ours = float(tf.random.uniform(()))
    keras.utils.set_random_seed(11)
    assert ours == float(tf.random.uniform(()))


@pytest.mark.backend_independent  # raises before any backend code
@pytest.mark.parametrize("seed", [1.5, "1", True, None])
def test_set_random_seed_rejects_non_int(seed):
    with pytest.raises(TypeError, match="seed"):
        _compat.set_random_seed(seed)


@pytest.mark.parametrize("obj_type", _compat.SAVING_TYPES)
def test_keras_saving_skipsets_are_cached_by_name_the_lookup_reads(obj_type, monkeypatch,
                                                                   tmp_path):
    """`cache_saving_skipsets` stores Keras's own skip set where ``get_attr_skipset``
    looks: later lookups build no reference object and return the same names, and a
    model's saved weights do not change."""
    from keras.src.layers.layer import Layer
    from keras.src.ops.operation import Operation
    from keras.src.saving import saving_lib

    from kerastrain._compat import clear_keras_state

    clear_keras_state()
    fresh = saving_lib.get_attr_skipset(obj_type)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.save_weights(tmp_path / "before.weights.h5")
    _compat.cache_saving_skipsets()
    built = []
    for cls in (Layer, Operation):
        init = cls.__init__
        monkeypatch.setattr(cls, "__init__", lambda self, *a, _init=init, **k: (
            built.append(1), _init(self, *a, **k))[1])
    assert saving_lib.get_attr_skipset(obj_type) == fresh
    assert not built  # served from the cache, no reference object
    model.save_weights(tmp_path / "after.weights.h5")
    monkeypatch.undo()
    restored = keras.Sequential([keras.Input((3,)),
                                 keras.layers.Dense(2, kernel_initializer="zeros")])
    restored.load_weights(tmp_path / "after.weights.h5")
    for ours, theirs in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    clear_keras_state()
