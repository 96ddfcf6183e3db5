"""The chapter's decays against float64 numpy, PyTorch and Keras's equivalents."""

import math

import keras
import numpy as np
import pytest
import torch
from _schedule_helpers import STEPS, assert_matches, evaluate, keras_values, torch_lrs

from kerastrain.schedules import (
    InverseTimeDecay,
    LinearDecay,
    MultiStepDecay,
    NaturalExponentialDecay,
    PiecewiseConstant,
    StepDecay,
)

pytestmark = pytest.mark.usefixtures("float64")

# Keras's built-in schedules compute in float32 whatever floatx is.
KERAS_RTOL = 1e-5


def test_step_decay_matches_reference():
    # Chapter: multiply by gamma every k steps.
    expected = [0.1 * 0.5 ** math.floor(t / 150) for t in STEPS]
    assert_matches(evaluate(StepDecay(0.1, step_size=150, gamma=0.5)), expected)


def test_step_decay_matches_torch_step_lr():
    rates, _ = torch_lrs(lambda opt: torch.optim.lr_scheduler.StepLR(opt, 150, 0.5), 1200, 0.1)
    assert_matches(evaluate(StepDecay(0.1, step_size=150, gamma=0.5)), rates)


def test_step_decay_matches_keras_staircase_exponential_decay():
    keras_schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 150, 0.5, staircase=True)
    expected = keras_values(keras_schedule, STEPS[::37])
    assert_matches(evaluate(StepDecay(0.1, 150, 0.5), STEPS[::37]), expected, rtol=KERAS_RTOL)


def test_multi_step_decay_matches_reference_and_torch():
    milestones = [100, 400, 900]
    expected = [0.2 * 0.3 ** sum(t >= m for m in milestones) for t in STEPS]
    schedule = MultiStepDecay(0.2, milestones, gamma=0.3)
    assert_matches(evaluate(schedule), expected)
    rates, _ = torch_lrs(
        lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, milestones, 0.3), 1200, 0.2
    )
    assert_matches(evaluate(schedule), rates)


def test_piecewise_constant_matches_reference():
    boundaries, rates = [10, 500, 1000], [0.5, 0.1, 0.02, 0.001]
    expected = [rates[sum(t >= b for b in boundaries)] for t in STEPS]
    assert_matches(evaluate(PiecewiseConstant(boundaries, rates)), expected)


def test_piecewise_constant_is_keras_piecewise_constant_decay_one_step_earlier():
    keras_schedule = keras.optimizers.schedules.PiecewiseConstantDecay([9, 499], [0.5, 0.1, 0.02])
    steps = np.array([0, 8, 9, 10, 11, 498, 499, 500, 501])
    expected = keras_values(keras_schedule, steps)
    actual = evaluate(PiecewiseConstant([10, 500], [0.5, 0.1, 0.02]), steps)
    assert_matches(actual, expected, rtol=KERAS_RTOL)


def test_linear_decay_matches_reference_and_keras_polynomial_decay():
    expected = [0.1 + (0.001 - 0.1) * min(t, 800) / 800 for t in STEPS]
    schedule = LinearDecay(0.1, 0.001, decay_steps=800)
    assert_matches(evaluate(schedule), expected)
    keras_schedule = keras.optimizers.schedules.PolynomialDecay(0.1, 800, 0.001, power=1.0)
    steps = STEPS[::53]
    assert_matches(evaluate(schedule, steps), keras_values(keras_schedule, steps),
                   rtol=KERAS_RTOL)


@pytest.mark.parametrize("staircase", [False, True])
def test_natural_exponential_decay_matches_reference(staircase):
    def t_of(step):
        return math.floor(step / 7) if staircase else step / 7

    expected = [0.1 * math.exp(-0.05 * t_of(t)) for t in STEPS]
    schedule = NaturalExponentialDecay(0.1, 0.05, decay_steps=7, staircase=staircase)
    assert_matches(evaluate(schedule), expected)


def test_natural_exponential_decay_per_step_equals_keras_exponential_decay():
    keras_schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 1, math.exp(-0.003))
    # Keras raises the float32 rate to the power t: its error grows like t * eps.
    steps = STEPS[:200:11]
    expected = keras_values(keras_schedule, steps)
    assert_matches(evaluate(NaturalExponentialDecay(0.1, 0.003), steps), expected,
                   rtol=KERAS_RTOL)


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time_decay_matches_reference_and_keras(staircase):
    def t_of(step):
        return math.floor(step / 5) if staircase else step / 5

    expected = [0.1 / (1.0 + 0.3 * t_of(t)) for t in STEPS]
    schedule = InverseTimeDecay(0.1, 0.3, decay_steps=5, staircase=staircase)
    assert_matches(evaluate(schedule), expected)
    keras_schedule = keras.optimizers.schedules.InverseTimeDecay(0.1, 5, 0.3, staircase=staircase)
    steps = STEPS[::59]
    assert_matches(evaluate(schedule, steps), keras_values(keras_schedule, steps),
                   rtol=KERAS_RTOL)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: StepDecay(0.1, 0), ValueError,
         "Argument `step_size` must be an integer >= 1. Received: step_size=0"),
        (lambda: StepDecay(0.1, -5), ValueError,
         "Argument `step_size` must be an integer >= 1. Received: step_size=-5"),
        (lambda: StepDecay(0.1, 2.5), TypeError,
         "Argument `step_size` must be an integer. Received: step_size=2.5 of type float"),
        (lambda: StepDecay(0.1, 10, gamma=1.5), ValueError,
         "Argument `gamma` must be in (0, 1]. Received: gamma=1.5"),
        (lambda: StepDecay(0.1, 10, gamma=0.0), ValueError,
         "Argument `gamma` must be in (0, 1]. Received: gamma=0.0"),
        (lambda: StepDecay(0.0, 10), ValueError,
         "Argument `initial_learning_rate` must be > 0. Received: initial_learning_rate=0.0"),
        (lambda: StepDecay("0.1", 10), TypeError,
         "Argument `initial_learning_rate` must be a number (int or float). "
         "Received: initial_learning_rate='0.1' of type str"),
        (lambda: StepDecay(0.1, 10, name=3), TypeError,
         "Argument `name` must be a string or None. Received: name=3 of type int"),
        (lambda: MultiStepDecay(0.1, [5, 5]), ValueError,
         "Argument `milestones` must be strictly increasing. Received: milestones=[5, 5]"),
        (lambda: MultiStepDecay(0.1, []), ValueError,
         "Argument `milestones` must contain at least one step. Received: milestones=[]"),
        (lambda: MultiStepDecay(0.1, [-3]), ValueError,
         "Argument `milestones[0]` must be an integer >= 1. Received: milestones[0]=-3"),
        (lambda: MultiStepDecay(0.1, 5), TypeError,
         "Argument `milestones` must be a list of integers. Received: milestones=5 of type int"),
        (lambda: PiecewiseConstant([10], [0.1]), ValueError,
         "Argument `values` must have one more entry than `boundaries` (2). "
         "Received: values=[0.1]"),
        (lambda: PiecewiseConstant([10], "ab"), TypeError,
         "Argument `values` must be a list of numbers. Received: values='ab' of type str"),
        (lambda: PiecewiseConstant([10], [0.1, -1.0]), ValueError,
         "Argument `values[1]` must be >= 0. Received: values[1]=-1.0"),
        (lambda: LinearDecay(0.1, -0.1, 100), ValueError,
         "Argument `final_learning_rate` must be >= 0. Received: final_learning_rate=-0.1"),
        (lambda: LinearDecay(0.1, 0.0, 0), ValueError,
         "Argument `decay_steps` must be an integer >= 1. Received: decay_steps=0"),
        (lambda: NaturalExponentialDecay(0.1, -0.5), ValueError,
         "Argument `decay_rate` must be >= 0. Received: decay_rate=-0.5"),
        (lambda: InverseTimeDecay(0.1, 0.5, staircase="yes"), TypeError,
         "Argument `staircase` must be a bool. Received: staircase='yes' of type str"),
        (lambda: InverseTimeDecay(0.1, float("nan")), ValueError,
         "Argument `decay_rate` must be a finite number. Received: decay_rate=nan"),
    ],
)
def test_bad_arguments_raise_at_construction(make, error, message):
    with pytest.raises(error) as raised:
        make()
    assert str(raised.value) == message
