"""Warmup and Sequence against float64 numpy references."""

import math

import keras
import numpy as np
import pytest
from _schedule_helpers import STEPS, assert_matches, evaluate

from kerastrain.schedules import SGDR, Constant, LinearDecay, Sequence, StepDecay, Warmup
from kerastrain.testing import TestCase

pytestmark = pytest.mark.usefixtures("float64")


def cosine_restarts(t, a0=0.1, period=100):
    """SGDR with t_mul = 1 (Loshchilov & Hutter 2017, eq. 5)."""
    return a0 * 0.5 * (1 + math.cos(math.pi * (t % period) / period))


def test_linear_warmup_matches_reference():
    expected = [1e-3 + (0.1 - 1e-3) * t / 200 if t < 200 else cosine_restarts(t - 200)
                for t in STEPS]
    schedule = Warmup(SGDR(0.1, 100, t_mul=1.0), 200, initial_learning_rate=1e-3)
    assert_matches(evaluate(schedule), expected, atol=1e-15)


def test_exponential_warmup_matches_reference():
    # Geometric warmup: the rate is multiplied by (a_s / a_w) ** (1 / w) every step.
    expected = [1e-5 * (0.1 / 1e-5) ** (t / 300) if t < 300 else 0.1 * 0.5 ** ((t - 300) // 250)
                for t in STEPS]
    schedule = Warmup(StepDecay(0.1, 250, 0.5), 300, initial_learning_rate=1e-5,
                      mode="exponential")
    assert_matches(evaluate(schedule), expected)


def test_warmup_of_a_constant_and_of_a_keras_schedule():
    expected = [0.05 * t / 100 if t < 100 else 0.05 for t in STEPS]
    assert_matches(evaluate(Warmup(0.05, 100)), expected)
    keras_schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 100, 0.5)
    steps = STEPS[::41]
    expected = [0.1 * t / 50 if t < 50 else float(keras_schedule(int(t) - 50)) for t in steps]
    assert_matches(evaluate(Warmup(keras_schedule, 50), steps), expected, rtol=1e-5)


def test_sequence_matches_reference():
    boundaries = [100, 350, 900]

    def reference(t):
        if t < 100:
            return 0.01 + (0.1 - 0.01) * t / 100
        if t < 350:
            return 0.1
        if t < 900:
            return cosine_restarts(t - 350, 0.1, 275)
        return 1e-4

    schedule = Sequence(
        [LinearDecay(0.01, 0.1, 100), Constant(0.1), SGDR(0.1, 275, t_mul=1.0), 1e-4], boundaries
    )
    assert_matches(evaluate(schedule), [reference(t) for t in STEPS], atol=1e-15)


def test_nested_schedules_round_trip():
    schedule = Sequence(
        [Warmup(SGDR(0.1, 50), 10, mode="exponential", initial_learning_rate=1e-4),
         keras.optimizers.schedules.ExponentialDecay(0.05, 100, 0.5), 0.001],
        boundaries=[500, 600],
    )
    revived = TestCase().run_serialization_test(schedule)
    assert isinstance(revived.schedules[0], Warmup)
    assert isinstance(revived.schedules[0].schedule, SGDR)
    assert isinstance(revived.schedules[1], keras.optimizers.schedules.ExponentialDecay)
    assert isinstance(revived.schedules[2], Constant)
    assert_matches(evaluate(revived, STEPS[::13]), evaluate(schedule, STEPS[::13]))


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Warmup(SGDR(0.1, 10), 0), ValueError,
         "Argument `warmup_steps` must be an integer >= 1. Received: warmup_steps=0"),
        (lambda: Warmup(SGDR(0.1, 10), 10, mode="cosine"), ValueError,
         "Argument `mode` must be one of 'linear', 'exponential'. Received: mode='cosine'"),
        (lambda: Warmup(SGDR(0.1, 10), 10, mode="exponential"), ValueError,
         'Argument `initial_learning_rate` must be > 0 when mode="exponential". '
         "Received: initial_learning_rate=0.0 A geometric warmup cannot start from 0: pass "
         'a small rate such as 1e-6, or use mode="linear".'),
        (lambda: Warmup("cosine", 10), TypeError,
         "Argument `schedule` must be a keras.optimizers.schedules.LearningRateSchedule or a "
         "number. Received: schedule='cosine' of type str"),
        (lambda: Warmup(SGDR(0.1, 10), 10, initial_learning_rate=-1.0), ValueError,
         "Argument `initial_learning_rate` must be >= 0. Received: initial_learning_rate=-1.0"),
        (lambda: Sequence([0.1], []), ValueError,
         "Argument `schedules` must contain at least two schedules. Received: schedules=[0.1] "
         "A single schedule needs no Sequence."),
        (lambda: Sequence([0.1, 0.01], [10, 20]), ValueError,
         "Argument `boundaries` must have one entry fewer than `schedules` (1). "
         "Received: boundaries=[10, 20]"),
        (lambda: Sequence([0.1, 0.01, 0.001], [20, 10]), ValueError,
         "Argument `boundaries` must be strictly increasing. Received: boundaries=[20, 10]"),
        (lambda: Sequence([0.1, 0.01], [0]), ValueError,
         "Argument `boundaries[0]` must be an integer >= 1. Received: boundaries[0]=0"),
        (lambda: Sequence([0.1, None], [5]), TypeError,
         "Argument `schedules[1]` must be a keras.optimizers.schedules.LearningRateSchedule or "
         "a number. Received: schedules[1]=None of type NoneType"),
        (lambda: Sequence(0.1, [5]), TypeError,
         "Argument `schedules` must be a list of schedules or numbers. "
         "Received: schedules=0.1 of type float"),
    ],
)
def test_bad_arguments_raise_at_construction(make, error, message):
    with pytest.raises(error) as raised:
        make()
    assert str(raised.value) == message


def test_warmup_ends_exactly_on_the_wrapped_schedule():
    schedule = Warmup(StepDecay(0.2, 10, 0.5), 40)
    assert_matches(evaluate(schedule, [39, 40, 49, 50]),
                   [0.2 * 39 / 40, 0.2, 0.2, 0.1])
    assert np.all(np.diff(evaluate(schedule, np.arange(41))) > 0)
