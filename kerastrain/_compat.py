"""Every private Keras and KerasTuner name kerastrain relies on, in one place.

Keras and KerasTuner keep no compatibility promise for names starting with an
underscore, for ``keras.src.*`` / ``keras_tuner.src.*`` modules, or for the
undocumented attributes below. kerastrain uses a few where no public API
does the job; each goes through one small function or class here, whose
docstring says why and on which versions it was checked, so that a new
release breaks one file and one test (``tests/compat/private_names_test.py``,
which names the missing attribute) instead of failing deep in a training run.

Checked on: keras 3.15.1 and keras-tuner 1.4.8 (``setup.cfg`` pins
``keras>=3.15,<3.16`` and ``keras-tuner==1.4.8``). Before widening a pin, run
``tests/compat/private_names_test.py`` against the new version.

Rules: nothing here changes process-wide state except inside a ``with`` block
that restores it; heavy imports (``keras_tuner``, gRPC) happen inside the
function that needs them. Names that KerasTuner exports publicly
(``keras_tuner.engine.trial.TrialStatus``,
``keras_tuner.engine.metrics_tracking.infer_metric_direction``) are imported
from their public path by the code that uses them, not from here.
"""

from __future__ import annotations

import contextlib
import importlib

KERAS_CHECKED = "3.15.1"
KERAS_TUNER_CHECKED = "1.4.8"

# ---------------------------------------------------------------------------
# Keras: models and layers
# ---------------------------------------------------------------------------


def flatten_layers(model, include_self=False, recursive=True):
    """Every layer of ``model`` at any depth (nested models included), in order.

    Keras's private ``Layer._flatten_layers(include_self, recursive)`` (checked
    on keras 3.15.1); the public ``model.layers`` is one level only.
    """
    return list(model._flatten_layers(include_self=include_self, recursive=recursive))


def call_has_training_arg(model):
    """Whether ``model.call`` accepts ``training`` (Keras's private
    ``Layer._call_has_training_arg``, checked on keras 3.15.1)."""
    return bool(model._call_has_training_arg)


def symbolic_build(model, data_batch):
    """Create a compiled model's metric, loss and optimizer variables as ``fit`` does
    before its first step, from one batch ``(x, y)`` (Keras's private
    ``Trainer._symbolic_build(data_batch=...)``, checked on keras 3.15.1)."""
    model._symbolic_build(data_batch=data_batch)


@contextlib.contextmanager
def losses_override(model, losses):
    """Hand forward-pass ``losses`` to ``model.stateless_compute_loss``, as Keras's own
    JAX trainer does, cleared again on exit.

    Keras's private ``Layer._losses_override`` list (checked on keras 3.15.1).
    An empty ``losses`` leaves the model untouched.
    """
    if not losses:
        yield
        return
    model._losses_override.clear()
    model._losses_override = losses
    try:
        yield
    finally:
        model._losses_override.clear()


def metric_direction(metric):
    """``"max"``, ``"min"`` or None: whether a Keras metric improves upwards.

    Keras's private ``Metric._direction`` (``"up"`` / ``"down"``, set by the
    built-in metrics; checked on keras 3.15.1). Anything else (a custom
    metric without it, an older release) is None: unknown.
    """
    direction = getattr(metric, "_direction", None)
    return {"up": "max", "down": "min"}.get(direction)


# ---------------------------------------------------------------------------
# Keras: optimizers
# ---------------------------------------------------------------------------


def optimizer_trainable_variables(optimizer):
    """The variables ``optimizer`` was built for, in build order.

    Keras's private ``BaseOptimizer._trainable_variables`` (checked on keras
    3.15.1); the public ``optimizer.variables`` holds its own slots instead.
    """
    return optimizer._trainable_variables


def optimizer_own_variables(optimizer):
    """The list ``optimizer.add_variable`` appends to (``BaseOptimizer._variables``,
    checked on keras 3.15.1): what ``optimizer.variables`` returns before any
    wrapper adds its inner optimizer's."""
    return optimizer._variables


def optimizer_iterations(optimizer):
    """The step counter *variable* (``BaseOptimizer._iterations``; the public
    ``iterations`` property returns the same object; checked on keras 3.15.1).
    Use it to ``assign_add`` from a wrapper that counts its own steps."""
    return optimizer._iterations


def variable_index(optimizer, variable):
    """The slot index of ``variable`` in ``optimizer``'s per-variable lists
    (``BaseOptimizer._get_variable_index``, checked on keras 3.15.1)."""
    return optimizer._get_variable_index(variable)


def use_weight_decay(optimizer, variable):
    """Whether ``optimizer`` decays ``variable`` (its ``exclude_from_weight_decay``
    rules; ``BaseOptimizer._use_weight_decay``, checked on keras 3.15.1)."""
    return bool(optimizer._use_weight_decay(variable))


def learning_rate_object(optimizer):
    """The learning rate as given: a ``keras.Variable`` or a schedule, not its value
    at the current step (``BaseOptimizer._learning_rate``, checked on keras 3.15.1)."""
    return optimizer._learning_rate


# Private methods kerastrain *overrides* in subclasses (a method name cannot be
# routed through a function): name -> (owner, the parameters Keras calls it with).
# tests/compat/private_names_test.py checks each name and signature.
OPTIMIZER_HOOKS = {
    "_backend_update_step": ("keras.optimizers.Optimizer",
                             ("self", "grads", "trainable_variables", "learning_rate")),
    "_apply_weight_decay": ("keras.optimizers.Optimizer", ("self", "variables")),
}


# ---------------------------------------------------------------------------
# Keras: seeding
# ---------------------------------------------------------------------------

_RNG_UTILS_MODULE = "keras.src.utils.rng_utils"


def set_random_seed(seed, tensorflow=True):
    """``keras.utils.set_random_seed(seed)``, without importing TensorFlow to seed it.

    ``tensorflow=False``: never seed TensorFlow, even where it is imported
    (``tf.random.set_seed`` clears the eager context's caches, which a
    ``tf.function`` running in another thread does not survive); for builds whose
    random draws are Python's, NumPy's and Keras's only (a vectorized group's members).

    Keras's function seeds Python, NumPy, Keras's global ``SeedGenerator`` (and
    torch on the torch backend), and calls ``tf.random.set_seed`` whenever
    TensorFlow is *installed*, importing it on the JAX and torch backends too:
    about 8 s on the 2-core CPU, a third of a vectorized 64-trial search, paid
    by a process that never otherwise touches TensorFlow (plain KerasTuner on
    JAX does not import it). Here TensorFlow is seeded, through Keras's own
    function, exactly when it is already imported (the TensorFlow backend, or a
    user's ``tf.data`` pipeline); otherwise its seed is left alone, since no
    TensorFlow random state exists in the process. The process-wide effect is
    the one the callers ask for (they replace ``keras.utils.set_random_seed``).

    Keras's private ``rng_utils.GLOBAL_RANDOM_SEED`` / ``global_state`` /
    ``seed_generator.GLOBAL_SEED_GENERATOR`` (checked on keras 3.15.1;
    ``tests/compat/private_names_test.py`` compares both functions' draws).
    """
    import random
    import sys

    import keras
    import numpy as np

    from kerastrain import _validation

    seed = _validation.check_integer("seed", seed)
    if tensorflow and "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    rng_utils = importlib.import_module(_RNG_UTILS_MODULE)
    rng_utils.global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    rng_utils.global_state.set_global_attribute(
        rng_utils.seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    from kerastrain._backend import _random

    _random.seed_framework(seed)


# ---------------------------------------------------------------------------
# Keras: dtype promotion (float64 diagnostics)
# ---------------------------------------------------------------------------

_DTYPES_MODULE = "keras.src.backend.common.dtypes"


def clear_keras_state():
    """``keras.backend.clear_session(free_memory=False)`` without the TensorFlow part.

    Keras's ``clear_session`` resets its global state (layer name counters, global
    settings) and, on TensorFlow, also resets the default graph and clears the eager
    context's kernel cache and step containers: a ``tf.function`` running in another
    thread at that moment (a vectorized group's epoch) then fails with ``NotFoundError:
    Container ... not found`` or worse. Builds that only need Keras's state reset (the
    members of a vectorized group, built while other groups' epochs run) call this.
    Keras internals: ``keras/src/backend/common/global_state.py``.
    """
    import threading

    from keras.src.backend.common import global_state

    global_state.GLOBAL_STATE_TRACKER = threading.local()
    global_state.GLOBAL_SETTINGS_TRACKER = threading.local()


_SAVING_LIB_MODULE = "keras.src.saving.saving_lib"
_GLOBAL_STATE_MODULE = "keras.src.backend.common.global_state"
# The saveable types a kerastrain MLP member's `save_weights` walks (a Sequential of
# built-in layers); building their skip sets constructs a reference object each.
SAVING_TYPES = ("Sequential", "Functional", "Layer", "Operation")


def cache_saving_skipsets(obj_types=SAVING_TYPES):
    """Fill Keras's cache of the attribute names ``save_weights`` skips per saveable type.

    Keras's ``saving_lib.get_attr_skipset(obj_type)`` caches its result in the global
    state under ``saving_attr_skipset_<type>`` but looks it up under
    ``saving_attr_skiplist_<type>``: it never finds it, so every ``save_weights`` builds
    a reference ``Layer()`` (or ``Operation()``) and lists its attributes for each
    object it walks, ~7 times for a small Sequential (0.43 s of the 0.99 s a 64-trial
    vectorized digits search spent writing its checkpoints). This stores Keras's own
    skip sets under the name the lookup reads, in the calling thread's Keras global state
    (reset by ``clear_keras_state`` / ``keras.backend.clear_session``); what is saved
    does not change. Keras internals (checked on keras 3.15.1).
    """
    saving_lib = importlib.import_module(_SAVING_LIB_MODULE)
    global_state = importlib.import_module(_GLOBAL_STATE_MODULE)
    for obj_type in obj_types:
        key = f"saving_attr_skiplist_{obj_type}"
        if global_state.get_global_attribute(key, None) is None:
            global_state.set_global_attribute(key, saving_lib.get_attr_skipset(obj_type))


def bit64_to_bit32_table():
    """Keras's float64 -> float32 promotion table on JAX / torch, a dict edited in place
    by `kerastrain._backend.float64_promotion` and restored on exit.

    ``keras.src.backend.common.dtypes.BIT64_TO_BIT32_DTYPE`` (checked on keras 3.15.1).
    """
    return importlib.import_module(_DTYPES_MODULE).BIT64_TO_BIT32_DTYPE


# ---------------------------------------------------------------------------
# KerasTuner: classes kerastrain extends
# ---------------------------------------------------------------------------


def mixin_class(name, mixin, base):
    """``class <name>(mixin, base)``: a KerasTuner class with kerastrain's mixin first.

    Made with ``type()`` because kerastrain extends four oracles and two tuners
    the same way; the result is an ordinary class (``__module__`` is the mixin's).
    Relies on KerasTuner calling the hooks in `ORACLE_HOOKS` / `TUNER_HOOKS`
    through ``self`` (checked on keras-tuner 1.4.8).
    """
    return type(name, (mixin, base), {"__module__": mixin.__module__})


def tuner_with_oracle(cls, oracle, **kwargs):
    """An instance of tuner class ``cls`` using ``oracle``, skipping ``cls.__init__``.

    KerasTuner's ``Hyperband.__init__`` builds its own oracle from its arguments
    and then only calls ``Tuner.__init__(oracle=..., hypermodel=..., **kwargs)``;
    kerastrain brings its own (atomic-state) oracle, so the instance is made
    with ``cls.__new__`` and initialized by ``keras_tuner.Tuner.__init__``
    (checked on keras-tuner 1.4.8: ``Hyperband.__init__`` sets nothing else).
    """
    import keras_tuner

    instance = cls.__new__(cls)
    keras_tuner.Tuner.__init__(instance, oracle=oracle, **kwargs)
    return instance


class OracleHooks:
    """Routes KerasTuner's private ``Oracle`` hooks to named kerastrain methods.

    KerasTuner calls ``self._save_trial(trial)`` whenever a trial's state file
    is written and ``self._check_consecutive_failures()`` after each trial ends
    (keras-tuner 1.4.8). A subclass implements `write_trial_state` and
    `check_consecutive_failures` and never spells the private names.
    """

    def _save_trial(self, trial):
        return self.write_trial_state(trial)

    def _check_consecutive_failures(self):
        return self.check_consecutive_failures()


class TunerHooks:
    """Routes KerasTuner's private ``BaseTuner._try_run_and_update_trial`` to
    `run_and_record_trial` (called once per trial by ``BaseTuner.search``,
    keras-tuner 1.4.8)."""

    def _try_run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
        return self.run_and_record_trial(trial, *fit_args, **fit_kwargs)


# Private names KerasTuner calls on ``self``, routed above: checked by the test.
ORACLE_HOOKS = ("_save_trial", "_check_consecutive_failures")
TUNER_HOOKS = ("_try_run_and_update_trial",)

# ---------------------------------------------------------------------------
# KerasTuner: oracle state
# ---------------------------------------------------------------------------


def oracle_file(oracle):
    """Path of ``oracle.json`` (``Oracle._get_oracle_fname()``, keras-tuner 1.4.8)."""
    return oracle._get_oracle_fname()


def oracle_trial_dir(oracle, trial_id):
    """``<project>/trial_<id>``, created if missing (``Oracle._get_trial_dir``,
    keras-tuner 1.4.8)."""
    return oracle._get_trial_dir(trial_id)


def oracle_project_dir(oracle):
    """The oracle's project directory (``Oracle._project_dir``, keras-tuner 1.4.8)."""
    return oracle._project_dir


def retry_queue(oracle):
    """The ids of trials to run again, a list edited in place
    (``Oracle._retry_queue``, keras-tuner 1.4.8)."""
    return oracle._retry_queue


def start_order(oracle):
    """Trial ids in the order trials started, a list edited in place
    (``Oracle.start_order``: undocumented, keras-tuner 1.4.8)."""
    return oracle.start_order


def end_order(oracle):
    """Trial ids in the order trials ended (COMPLETED or FAILED), a list edited in
    place (``Oracle.end_order``: undocumented, keras-tuner 1.4.8)."""
    return oracle.end_order


# ---------------------------------------------------------------------------
# KerasTuner: tuner internals
# ---------------------------------------------------------------------------


def run_and_update_trial(tuner, trial, *fit_args, **fit_kwargs):
    """Run one trial and report its metrics to the oracle
    (``BaseTuner._run_and_update_trial``, keras-tuner 1.4.8)."""
    return tuner._run_and_update_trial(trial, *fit_args, **fit_kwargs)


def try_build(tuner, hp):
    """Build (and compile) the trial's model, retrying failed builds as KerasTuner
    does (``Tuner._try_build``, keras-tuner 1.4.8)."""
    return tuner._try_build(hp)


def build_hypermodel(tuner, hp):
    """Build the trial's model once, no retries (``Tuner._build_hypermodel``,
    keras-tuner 1.4.8)."""
    return tuner._build_hypermodel(hp)


def deepcopy_callbacks(tuner, callbacks):
    """Fresh copies of the user's callbacks for one trial (``Tuner._deepcopy_callbacks``,
    keras-tuner 1.4.8)."""
    return tuner._deepcopy_callbacks(callbacks)


def tuner_file(tuner):
    """Path of the tuner's state file (``BaseTuner._get_tuner_fname``, keras-tuner 1.4.8)."""
    return tuner._get_tuner_fname()


def checkpoint_file(tuner, trial_id):
    """Where a trial's best-epoch weights go (``Tuner._get_checkpoint_fname``,
    keras-tuner 1.4.8)."""
    return tuner._get_checkpoint_fname(trial_id)


def build_config_file(tuner, trial_id):
    """Where a trial's build config goes (``Tuner._get_build_config_fname``,
    keras-tuner 1.4.8)."""
    return tuner._get_build_config_fname(trial_id)


def save_best_epoch(objective, filepath):
    """KerasTuner's callback saving the best epoch's weights, which ``get_best_models``
    and Hyperband's next round load (``keras_tuner.src.engine.tuner_utils.SaveBestEpoch``,
    keras-tuner 1.4.8)."""
    from keras_tuner.src.engine import tuner_utils

    return tuner_utils.SaveBestEpoch(objective=objective, filepath=filepath)


def save_build_config(tuner, trial_id, model):
    """Write the model's build config as KerasTuner does on multi-backend Keras
    (``keras_tuner.src.backend.config.multi_backend`` and ``keras_tuner.src.utils.save_json``,
    keras-tuner 1.4.8); nothing on Keras 2."""
    import keras_tuner

    if keras_tuner.src.backend.config.multi_backend():
        keras_tuner.src.utils.save_json(build_config_file(tuner, trial_id),
                                        model.get_build_config())


def debug_enabled():
    """KerasTuner's ``keras_tuner.src.config.DEBUG`` (print tracebacks of failed trials;
    keras-tuner 1.4.8)."""
    import keras_tuner

    return bool(keras_tuner.src.config.DEBUG)


@contextlib.contextmanager
def record_retrievals(hp, on_retrieve):
    """Call ``on_retrieve(hyperparameter)`` each time ``hp`` hands out a value.

    Wraps KerasTuner's private ``HyperParameters._retrieve`` on this one object
    only (an instance attribute), removed on exit (keras-tuner 1.4.8).
    """
    retrieve = hp._retrieve

    def recording(hyperparameter):
        value = retrieve(hyperparameter)
        on_retrieve(hyperparameter)
        return value

    hp._retrieve = recording
    try:
        yield hp
    finally:
        del hp._retrieve


# ---------------------------------------------------------------------------
# KerasTuner: distributed (chief / worker over gRPC)
# ---------------------------------------------------------------------------


def has_chief_oracle():
    """Whether this process is part of a chief/worker search
    (``keras_tuner.src.distribute.utils.has_chief_oracle``, keras-tuner 1.4.8)."""
    from keras_tuner.src.distribute import utils

    return utils.has_chief_oracle()


def is_chief_oracle():
    """Whether this process is the chief (``keras_tuner.src.distribute.utils``,
    keras-tuner 1.4.8)."""
    from keras_tuner.src.distribute import utils

    return utils.is_chief_oracle()


def add_oracle_servicer(oracle, server):
    """Serve ``oracle`` on gRPC ``server``; returns KerasTuner's ``OracleServicer``
    (``keras_tuner.src.distribute.oracle_chief`` and ``keras_tuner.src.protos``,
    keras-tuner 1.4.8). Its ``stop_triggered`` turns True once a worker was told
    to stop."""
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    return servicer


def chief_may_exit(oracle):
    """KerasTuner's test that no trial is running any more
    (``keras_tuner.src.distribute.oracle_chief.exit_chief``, keras-tuner 1.4.8)."""
    from keras_tuner.src.distribute import oracle_chief

    return oracle_chief.exit_chief(oracle)


@contextlib.contextmanager
def client_timeout(seconds):
    """Cap every worker-to-chief gRPC call at ``seconds`` inside the block.

    KerasTuner's ``OracleClient`` reads the module constant
    ``keras_tuner.src.distribute.oracle_client.TIMEOUT`` (1 hour) at every call
    and takes no per-call or per-client timeout (keras-tuner 1.4.8), so the
    constant is set for the block and restored on exit, errors included.
    """
    from keras_tuner.src.distribute import oracle_client

    saved = oracle_client.TIMEOUT
    oracle_client.TIMEOUT = float(seconds)
    try:
        yield
    finally:
        oracle_client.TIMEOUT = saved
