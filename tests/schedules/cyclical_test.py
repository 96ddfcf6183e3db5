"""Cyclical learning rates against Smith's formula (float64 numpy) and PyTorch's CyclicLR."""

import math

import keras
import numpy as np
import pytest
import torch
from _schedule_helpers import STEPS, assert_matches, evaluate, torch_lrs

from kerastrain.schedules import (
    CyclicalLearningRate,
    ExponentialCyclicalLearningRate,
    Triangular2CyclicalLearningRate,
    TriangularCyclicalLearningRate,
)
from kerastrain.testing import TestCase

pytestmark = pytest.mark.usefixtures("float64")


def smith_reference(low, high, step_size, scale, scale_mode):
    """Smith 2017, section 3.1: the triangular policy with an amplitude scale."""
    values = []
    for t in STEPS:
        cycle = math.floor(1 + t / (2 * step_size))
        x = abs(t / step_size - 2 * cycle + 1)
        s = cycle if scale_mode == "cycle" else t
        values.append(low + (high - low) * max(0.0, 1 - x) * scale(s))
    return values


def test_triangular_matches_reference():
    expected = smith_reference(1e-3, 6e-3, 97, lambda s: 1.0, "cycle")
    assert_matches(evaluate(TriangularCyclicalLearningRate(1e-3, 6e-3, 97)), expected)


def test_triangular2_matches_reference():
    expected = smith_reference(1e-3, 6e-3, 97, lambda s: 1 / 2 ** (s - 1), "cycle")
    assert_matches(evaluate(Triangular2CyclicalLearningRate(1e-3, 6e-3, 97)), expected)


def test_exponential_matches_reference():
    expected = smith_reference(1e-3, 6e-3, 97, lambda s: 0.998 ** s, "iterations")
    schedule = ExponentialCyclicalLearningRate(1e-3, 6e-3, 97, gamma=0.998)
    assert_matches(evaluate(schedule), expected)


def test_custom_scale_fn_matches_reference():
    expected = smith_reference(0.01, 0.1, 50, lambda s: 1 / (1 + 0.01 * s), "iterations")
    schedule = CyclicalLearningRate(0.01, 0.1, 50, scale_fn=lambda s: 1 / (1 + 0.01 * s),
                                    scale_mode="iterations")
    assert_matches(evaluate(schedule), expected)


@pytest.mark.parametrize(
    ("schedule", "mode", "gamma"),
    [
        (TriangularCyclicalLearningRate(1e-3, 6e-3, 97), "triangular", 1.0),
        (Triangular2CyclicalLearningRate(1e-3, 6e-3, 97), "triangular2", 1.0),
        (ExponentialCyclicalLearningRate(1e-3, 6e-3, 97, gamma=0.998), "exp_range", 0.998),
    ],
    ids=["triangular", "triangular2", "exp_range"],
)
def test_matches_torch_cyclic_lr(schedule, mode, gamma):
    def make(optimizer):
        return torch.optim.lr_scheduler.CyclicLR(
            optimizer, base_lr=1e-3, max_lr=6e-3, step_size_up=97, mode=mode, gamma=gamma,
            cycle_momentum=False,
        )

    rates, _ = torch_lrs(make, len(STEPS))
    assert_matches(evaluate(schedule), rates)


@keras.saving.register_keras_serializable(package="kerastrain_tests")
def halve_every_cycle(cycle):
    return 0.5 ** (cycle - 1)


def test_registered_scale_fn_round_trips():
    schedule = CyclicalLearningRate(0.01, 0.1, 10, scale_fn=halve_every_cycle)
    revived = TestCase().run_serialization_test(schedule)
    assert revived.scale_fn is halve_every_cycle
    assert_matches(evaluate(revived), evaluate(schedule))


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: TriangularCyclicalLearningRate(0.1, 0.01, 10), ValueError,
         "Argument `maximal_learning_rate` must be >= initial_learning_rate=0.1. "
         "Received: maximal_learning_rate=0.01 Swap the two rates: the cycle goes from the "
         "initial (lower) rate up to the maximal one."),
        (lambda: TriangularCyclicalLearningRate(0.01, 0.1, 0), ValueError,
         "Argument `step_size` must be an integer >= 1. Received: step_size=0"),
        (lambda: TriangularCyclicalLearningRate(0.01, 0.1, 10, scale_mode="epoch"), ValueError,
         "Argument `scale_mode` must be one of 'cycle', 'iterations'. "
         "Received: scale_mode='epoch'"),
        (lambda: ExponentialCyclicalLearningRate(0.01, 0.1, 10, gamma=1.01), ValueError,
         "Argument `gamma` must be in (0, 1]. Received: gamma=1.01"),
        (lambda: CyclicalLearningRate(0.01, 0.1, 10, scale_fn=None), TypeError,
         "Argument `scale_fn` must be a callable. Received: scale_fn=None of type NoneType "
         "Pass e.g. `scale_fn=lambda cycle: 0.5 ** (cycle - 1)`."),
    ],
)
def test_bad_arguments_raise_at_construction(make, error, message):
    with pytest.raises(error) as raised:
        make()
    assert str(raised.value) == message


def test_values_do_not_depend_on_dtype_of_step():
    schedule = Triangular2CyclicalLearningRate(1e-3, 6e-3, 97)
    as_ints = evaluate(schedule, np.arange(300, dtype="int32"))
    as_floats = evaluate(schedule, np.arange(300, dtype="float64"))
    assert_matches(as_ints, as_floats)
