"""The transform protocol: declared slots and hyperparameters, `Scaled`, configs, Keras forms."""

import inspect

import keras
import numpy as np
import pytest
from optimizer_helpers import run_keras, run_numpy

from kerastrain import optimizers
from kerastrain.optimizers import _presets
from kerastrain.optimizers import transforms as T
from kerastrain.testing import TestCase

LR = 0.1
STEPS = 12


@keras.saving.register_keras_serializable(package="kerastrain_tests")
class CountedTrace(T.Transform):
    """t ← decay_k·t + u; u ← Scaled(t, factor / k), k counted in a global slot from 1."""

    hyperparameters = (T.Hyperparameter("decay", "the trace's decay", "schedulable"),
                       T.Hyperparameter("factor", "multiplies the trace"))
    slots = ("trace",)
    global_slots = (T.Slot("count", 0.0),)

    def __init__(self, decay=0.5, factor=2.0):
        self.decay, self.factor = decay, factor

    def begin_step(self, optimizer, grads, variables, global_slots):
        count = global_slots["count"] + 1.0
        optimizer.assign(global_slots["count"], count)
        return self.hyperparameter_at("decay", optimizer), count

    def update(self, updates, context):
        decay, count = context.state
        trace = context.slots["trace"] * decay + updates
        context.optimizer.assign(context.slots["trace"], trace)
        return T.Scaled(trace, self.factor / count)


class DoubleGradient(T.Transform):
    """A gradient transform returning `Scaled`: later moments must see 2g."""

    gradient_transform = True

    def update(self, updates, context):
        return T.Scaled(updates, 2.0)


def _chain(*transforms):
    return optimizers.Chain(list(transforms), learning_rate=LR, record_statistics=False)


def _trace_reference(decays, after=lambda u, s: u):
    def step(w, g, t, s):
        s["trace"] = decays[t - 1] * s.get("trace", 0.0) + g
        return w - LR * after(2.0 / t * s["trace"], s)
    return step


def test_slots_global_slots_and_scaled_against_numpy():
    ours = run_keras(_chain(CountedTrace(0.5, 2.0)), STEPS)
    np.testing.assert_allclose(ours, run_numpy(_trace_reference([0.5] * STEPS), STEPS),
                               rtol=1e-5, atol=1e-6)


def test_schedulable_hyperparameter_is_resolved_each_step():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.8, 3, 0.5)
    decays = [float(schedule(t)) for t in range(STEPS)]
    ours = run_keras(_chain(CountedTrace(schedule, 2.0)), STEPS)
    np.testing.assert_allclose(ours, run_numpy(_trace_reference(decays), STEPS),
                               rtol=1e-5, atol=1e-6)


def test_pending_factor_is_applied_before_a_transform_that_is_not_scale_invariant():
    """ClipByValue is not scale-invariant: it clips (2/k)·t, not t."""
    ours = run_keras(_chain(CountedTrace(0.5, 2.0), T.ClipByValue(0.3)), STEPS)
    reference = _trace_reference([0.5] * STEPS, lambda u, s: np.clip(u, -0.3, 0.3))
    np.testing.assert_allclose(ours, run_numpy(reference, STEPS), rtol=1e-5, atol=1e-6)


def test_gradient_transform_output_becomes_the_gradient_with_its_factor():
    """ScaleByRMS's second moment sees DoubleGradient's 2g (its `Scaled` factor included)."""
    def step(w, g, t, s):
        s["v"] = 0.9 * s.get("v", 0.0) + 0.1 * (2 * g) ** 2
        return w - LR * 2 * g / np.sqrt(s["v"] + 1e-3)

    ours = run_keras(_chain(DoubleGradient(), T.ScaleByRMS(0.9, 1e-3, "inside")), STEPS)
    np.testing.assert_allclose(ours, run_numpy(step, STEPS), rtol=1e-5, atol=1e-6)


def test_declared_slots_are_the_optimizer_variables():
    """Per transform, in chain order: its per-variable slots, then its global ones."""
    variable = keras.Variable(np.zeros((2, 3), "float32"), name="kernel")
    optimizer = _chain(CountedTrace(), T.FirstMoment(0.9), T.ScaleByRMS(0.99, amsgrad=True))
    optimizer.build([variable])
    names = [v.name for v in optimizer.variables[2:]]  # after iterations and learning_rate
    assert names == ["kernel_trace", "count", "kernel_m", "kernel_v", "kernel_v_max"]


class ConfigTest(TestCase):
    def test_custom_transform_round_trips_with_a_schedule(self):
        schedule = keras.optimizers.schedules.ExponentialDecay(0.8, 3, 0.5)
        revived = self.run_serialization_test(CountedTrace(schedule, 3.0))
        self.assertIsInstance(revived.decay, keras.optimizers.schedules.ExponentialDecay)
        self.assertEqual(revived.factor, 3.0)

    def test_keras_forms_round_trip(self):
        for transform in (_presets.KerasFirstMoment(0.8), _presets.KerasAdamScale(0.99, 1e-6, True)):
            revived = self.run_serialization_test(transform)
            self.assertEqual(repr(revived), repr(transform))


BUILT_IN = [T.ClipByValue, T.ClipByNorm, T.ClipByGlobalNorm, T.AdaptiveClip, T.WeightDecay,
            T.ScaleByLearningRate, T.Momentum, T.FirstMoment, T.ScaleByRMS, T.AdagradScale,
            T.AdadeltaScale, T.NadamMoment, T.ScaleByTrustRatio, T.RectifiedScale,
            T.ScaleByBelief, _presets.KerasFirstMoment, _presets.KerasAdamScale]


@pytest.mark.parametrize("cls", BUILT_IN, ids=lambda c: c.__name__)
def test_declared_hyperparameters_are_the_constructor_arguments(cls):
    arguments = list(inspect.signature(cls.__init__).parameters)[1:]
    assert [h.name for h in cls.hyperparameters] == arguments
    assert all(h.description for h in cls.hyperparameters)


def test_declared_hyperparameters_of_presets():
    beta_1 = keras.optimizers.schedules.ExponentialDecay(0.9, 10, 0.5)
    rows = T.hyperparameter_table(optimizers.Adam(1e-3, beta_1=beta_1, beta_2=0.99))
    assert [(r["transform"], r["class"], r["name"], r["kind"], r["numeric"]) for r in rows] == [
        (0, "KerasFirstMoment", "beta_1", "schedulable", True),
        (0, "KerasFirstMoment", "bias_correction", "bool", False),
        (1, "KerasAdamScale", "beta_2", "float", True),
        (1, "KerasAdamScale", "epsilon", "float", True),
        (1, "KerasAdamScale", "amsgrad", "bool", False),
        (2, "ScaleByLearningRate", "lr_decay", "float", True),  # appended by the chain
    ]
    assert rows[0]["value"] == keras.saving.serialize_keras_object(beta_1)
    assert rows[2]["value"] == 0.99
    rms = T.hyperparameter_table(optimizers.RMSprop(rho=0.8, convention="torch"))
    assert {(r["class"], r["name"]): r["value"] for r in rms}[("ScaleByRMS", "beta_2")] == 0.8


ADAM_CONFIG_BEFORE = [  # what Chain(Adam().transforms).get_config() held before the presets
    {"beta_1": 0.9, "bias_correction": True, "keras_rounding": True},  # owned Keras's forms
    {"beta_2": 0.999, "epsilon": 1e-7, "epsilon_placement": "outside_uncorrected",
     "bias_correction": True, "centered": False, "amsgrad": False, "keras_rounding": True},
]


def test_configs_saved_with_the_former_keras_switches_still_load():
    first = T.FirstMoment.from_config(ADAM_CONFIG_BEFORE[0])
    scale = T.ScaleByRMS.from_config(ADAM_CONFIG_BEFORE[1])
    assert type(first) is _presets.KerasFirstMoment and type(scale) is _presets.KerasAdamScale
    assert type(T.FirstMoment.from_config(dict(ADAM_CONFIG_BEFORE[0], keras_rounding=False))) \
        is T.FirstMoment
    chain = _chain(T.FirstMoment(), T.ScaleByRMS())
    config = chain.get_config()
    for saved, old in zip(config["transforms"], ADAM_CONFIG_BEFORE):
        saved["config"] = old
    revived = optimizers.Chain.from_config(config)
    ours = run_keras(revived, STEPS)
    np.testing.assert_array_equal(ours, run_keras(optimizers.Adam(LR, record_statistics=False),
                                                  STEPS))
    np.testing.assert_allclose(ours, run_keras(keras.optimizers.Adam(LR), STEPS),
                               rtol=1e-6, atol=1e-6)


def test_configs_saved_from_the_former_module_still_load():
    """Momentum lived in kerastrain.optimizers._transforms; the registered name finds it."""
    saved = keras.saving.serialize_keras_object(T.Momentum(0.8, nesterov=True))
    saved["module"] = "kerastrain.optimizers._transforms"
    revived = keras.saving.deserialize_keras_object(saved)
    assert type(revived) is T.Momentum and (revived.momentum, revived.nesterov) == (0.8, True)
