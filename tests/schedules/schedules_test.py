"""One table-driven test over every schedule: config, fit, saved model, no retracing, API."""

import keras
import numpy as np
import pytest
from _schedule_helpers import assert_matches, evaluate
from keras import ops

import kerastrain
from kerastrain import schedules
from kerastrain.testing import TestCase, reload_model


@keras.saving.register_keras_serializable(package="kerastrain_tests")
def shrinking_amplitude(cycle):
    return 1.0 / (1.0 + cycle)


@keras.saving.register_keras_serializable(package="kerastrain_tests")
def mean_prediction(y_true, y_pred):
    return ops.mean(y_pred)


def all_schedules():
    """One configured instance of every public schedule class."""
    return {
        "Constant": schedules.Constant(0.05),
        "StepDecay": schedules.StepDecay(0.1, step_size=2, gamma=0.5),
        "MultiStepDecay": schedules.MultiStepDecay(0.1, [1, 3], gamma=0.3),
        "PiecewiseConstant": schedules.PiecewiseConstant([2, 4], [0.1, 0.05, 0.01]),
        "LinearDecay": schedules.LinearDecay(0.1, 0.01, decay_steps=5),
        "NaturalExponentialDecay": schedules.NaturalExponentialDecay(0.1, 0.2),
        "InverseTimeDecay": schedules.InverseTimeDecay(0.1, 0.5, decay_steps=2, staircase=True),
        "CyclicalLearningRate": schedules.CyclicalLearningRate(
            0.01, 0.1, 2, scale_fn=shrinking_amplitude, scale_mode="cycle"),
        "TriangularCyclicalLearningRate": schedules.TriangularCyclicalLearningRate(0.01, 0.1, 2),
        "Triangular2CyclicalLearningRate": schedules.Triangular2CyclicalLearningRate(
            0.01, 0.1, 2),
        "ExponentialCyclicalLearningRate": schedules.ExponentialCyclicalLearningRate(
            0.01, 0.1, 2, gamma=0.9),
        "SGDR": schedules.SGDR(0.1, 3, t_mul=2.0, m_mul=0.8, alpha=0.1, warmup_steps=1),
        "OneCycle": schedules.OneCycle(0.1, 6, pct_start=0.4, three_phase=True),
        "OneCycleMomentum": schedules.OneCycleMomentum(6, anneal_strategy="linear"),
        "Warmup": schedules.Warmup(schedules.StepDecay(0.1, 2), 3, initial_learning_rate=0.01,
                                   mode="exponential"),
        "Sequence": schedules.Sequence([schedules.LinearDecay(0.01, 0.1, 2), 0.05,
                                        keras.optimizers.schedules.ExponentialDecay(0.05, 4, 0.5)],
                                       boundaries=[2, 4]),
        "Scaled": schedules.Scaled(schedules.SGDR(0.1, 3), factor=0.5, min_learning_rate=0.02),
    }


SCHEDULES = all_schedules()
NAMES = sorted(SCHEDULES)


def test_every_public_schedule_is_in_the_table():
    classes = {name for name in schedules.__all__
               if isinstance(getattr(schedules, name), type)
               and issubclass(getattr(schedules, name),
                              keras.optimizers.schedules.LearningRateSchedule)}
    assert classes == set(SCHEDULES)


def test_public_api():
    assert sorted(schedules.__all__) == sorted([
        "Constant", "CyclicalLearningRate", "ExponentialCyclicalLearningRate",
        "InverseTimeDecay", "LinearDecay", "MultiStepDecay", "NaturalExponentialDecay",
        "OneCycle", "OneCycleMomentum", "PiecewiseConstant", "SGDR",
        "Scaled", "Sequence", "StepDecay", "Triangular2CyclicalLearningRate",
        "TriangularCyclicalLearningRate", "Warmup", "plot", "values",
    ])
    assert kerastrain.schedules is schedules
    for name in schedules.__all__:
        assert hasattr(schedules, name)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    schedule = SCHEDULES[name]
    revived = TestCase().run_serialization_test(schedule)
    registered = keras.saving.get_registered_name(type(schedule))
    assert registered == f"kerastrain>{type(schedule).__name__}"
    assert_matches(evaluate(revived, np.arange(12)), evaluate(schedule, np.arange(12)))


@pytest.mark.parametrize("name", NAMES)
def test_fit_uses_the_schedule_and_the_saved_model_brings_it_back(name):
    schedule = all_schedules()[name]
    model = keras.Sequential([keras.Input((1,)),
                              keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    # d(loss)/dw = 1, so SGD moves the weight by exactly -lr(t) at step t.
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule), loss=mean_prediction)
    model.fit(np.ones((6, 1)), np.zeros((6, 1)), batch_size=1, epochs=1, verbose=0)
    weight = model.trainable_weights[0].numpy()[0, 0]
    np.testing.assert_allclose(weight, -np.sum(evaluate(schedule, np.arange(6))), rtol=1e-5)
    revived = reload_model(model)
    revived_schedule = revived.optimizer._learning_rate
    assert type(revived_schedule) is type(schedule)
    assert revived_schedule.get_config() == schedule.get_config()
    np.testing.assert_allclose(
        ops.convert_to_numpy(revived.optimizer.learning_rate),
        ops.convert_to_numpy(model.optimizer.learning_rate), rtol=1e-6,
    )


def _compiled_counting(function):
    """``function`` compiled by the backend, and a list counting its (re)traces."""
    traces = []

    def traced(step):
        traces.append(1)
        return function(step)

    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(traced), lambda i: tf.constant(i, tf.int64), traces
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        return jax.jit(traced), lambda i: jnp.asarray(i, jnp.int32), traces
    import torch
    from torch._dynamo.testing import CompileCounter

    counter = CompileCounter()
    compiled = torch.compile(function, backend=counter)

    class Frames(list):
        def __len__(self):
            return counter.frame_count

    return compiled, lambda i: torch.tensor(i), Frames()


@pytest.mark.parametrize("name", NAMES)
def test_calling_inside_a_compiled_step_does_not_retrace(name):
    schedule = SCHEDULES[name]
    compiled, to_step, traces = _compiled_counting(schedule)
    outputs = []
    for step in range(7):
        outputs.append(float(ops.convert_to_numpy(compiled(to_step(step)))))
        if step == 1:
            traced_after_warmup = len(traces)
    assert len(traces) == traced_after_warmup
    if keras.config.backend() != "torch":
        assert len(traces) == 1  # tf.function / jax.jit: one trace for every step
    np.testing.assert_allclose(outputs, evaluate(schedule, np.arange(7)), rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_default_float32_is_close_to_float64(name, float64):
    schedule = SCHEDULES[name]
    precise = evaluate(schedule, np.arange(40))
    keras.config.set_floatx("float32")
    values = evaluate(schedule, np.arange(40))
    assert ops.convert_to_numpy(schedule(3)).dtype == np.float32
    np.testing.assert_allclose(values, precise, rtol=2e-6, atol=1e-8)


@pytest.mark.parametrize("bad", [-1, "ten", 2.5, [0, -3], np.zeros((2, 2)), True, [[1], [1, 2]]])
def test_values_rejects_bad_steps(bad):
    with pytest.raises((TypeError, ValueError)) as raised:
        schedules.values(schedules.Constant(0.1), bad)
    assert str(raised.value).startswith("Argument `steps` must")
    assert f"Received: steps={bad!r}" in str(raised.value)


def test_values_of_a_keras_schedule_step_by_step():
    keras_schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    expected = [float(keras_schedule(t)) for t in range(5)]
    np.testing.assert_allclose(schedules.values(keras_schedule, 5), expected, rtol=1e-6)


def test_values_rejects_a_non_schedule():
    with pytest.raises(TypeError) as raised:
        schedules.values(lambda step: 0.1, 5)
    assert str(raised.value).startswith(
        "Argument `schedule` must be a keras.optimizers.schedules.LearningRateSchedule. "
        "Received: schedule=<function"
    )


def test_subclasses_must_implement_the_formula():
    from kerastrain.schedules._base import Schedule
    from kerastrain.schedules._one_cycle import _OneCyclePhases

    class NoFormula(Schedule):
        pass

    with pytest.raises(NotImplementedError) as raised:
        NoFormula()(0)
    assert str(raised.value) == "NoFormula must implement `_compute`."

    class NoPhases(_OneCyclePhases):
        pass

    with pytest.raises(NotImplementedError):
        NoPhases(10, 0.3, "cos", False, "NoPhases")(0)


def test_whole_floats_are_accepted_as_step_counts():
    schedule = schedules.StepDecay(0.1, step_size=10.0)
    assert schedule.step_size == 10 and isinstance(schedule.step_size, int)


@pytest.mark.parametrize("name", NAMES)
def test_negative_steps_are_step_zero(name):
    # The one rule (README "Schedules"): a step below 0 is step 0. Keras and TFA neither
    # clamp nor raise; without the rule StepDecay(0.1, 10)(-3) was 1.0 (10x the rate) and
    # OneCycle(0.1, 100)(-5) 0.004.
    schedule = SCHEDULES[name]
    at_zero = float(ops.convert_to_numpy(schedule(0)))
    for step in (-1, -3, -1000):
        assert float(ops.convert_to_numpy(schedule(step))) == at_zero
    steps = np.array([-5, -1, 0, 1, 2])
    values = ops.convert_to_numpy(schedule(steps))
    np.testing.assert_array_equal(values[:2], [at_zero, at_zero])
    np.testing.assert_array_equal(values[2:], ops.convert_to_numpy(schedule(steps[2:])))


def test_negative_steps_never_exceed_the_initial_rate():
    assert float(ops.convert_to_numpy(schedules.StepDecay(0.1, 10)(-3))) == pytest.approx(0.1)
    one_cycle = schedules.OneCycle(0.1, 100)
    assert float(ops.convert_to_numpy(one_cycle(-5))) == float(
        ops.convert_to_numpy(one_cycle(0)))
