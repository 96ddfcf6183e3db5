"""OneCycle and its momentum cycle against Smith's policy (float64 numpy) and PyTorch's OneCycleLR."""

import math

import numpy as np
import pytest
import torch
from _schedule_helpers import STEPS, assert_matches, evaluate, torch_lrs

from kerastrain.schedules import OneCycle, OneCycleMomentum

pytestmark = pytest.mark.usefixtures("float64")

TOTAL = len(STEPS)


def anneal(start, end, fraction, strategy):
    if strategy == "cos":
        return end + (start - end) / 2 * (1 + math.cos(math.pi * fraction))
    return start + (end - start) * fraction


def one_cycle_reference(points, pct_start, strategy, three_phase, total=TOTAL):
    """Piecewise annealing through ``points`` (value at each phase end), Smith 2018."""
    ends = [pct_start * total - 1, total - 1]
    if three_phase:
        ends = [pct_start * total - 1, 2 * pct_start * total - 2, total - 1]
    values = []
    for t in range(total):
        start = 0.0
        for index, end in enumerate(ends):
            if t <= end or index == len(ends) - 1:
                fraction = (t - start) / (end - start)
                values.append(anneal(points[index], points[index + 1], fraction, strategy))
                break
            start = end
    return values


CASES = [
    (0.3, "cos", False),
    (0.25, "linear", False),
    (0.3, "cos", True),
    (0.2, "linear", True),
]


@pytest.mark.parametrize(("pct_start", "strategy", "three_phase"), CASES)
def test_matches_reference(pct_start, strategy, three_phase):
    schedule = OneCycle(0.5, TOTAL, pct_start=pct_start, anneal_strategy=strategy,
                        div_factor=20.0, final_div_factor=100.0, three_phase=three_phase)
    start, peak, final = 0.5 / 20, 0.5, 0.5 / 20 / 100
    points = [start, peak, start, final] if three_phase else [start, peak, final]
    expected = one_cycle_reference(points, pct_start, strategy, three_phase)
    assert_matches(evaluate(schedule), expected)
    momentum = schedule.momentum_schedule(base_momentum=0.8, max_momentum=0.9)
    points = [0.9, 0.8, 0.9, 0.9] if three_phase else [0.9, 0.8, 0.9]
    expected = one_cycle_reference(points, pct_start, strategy, three_phase)
    assert_matches(evaluate(momentum), expected)


@pytest.mark.parametrize(("pct_start", "strategy", "three_phase"), CASES)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_matches_torch_one_cycle_lr(pct_start, strategy, three_phase, optimizer):
    def make(torch_optimizer):
        return torch.optim.lr_scheduler.OneCycleLR(
            torch_optimizer, max_lr=0.5, total_steps=TOTAL, pct_start=pct_start,
            anneal_strategy=strategy, div_factor=20.0, final_div_factor=100.0,
            three_phase=three_phase, base_momentum=0.8, max_momentum=0.9,
        )

    rates, momenta = torch_lrs(make, TOTAL, optimizer=optimizer)
    schedule = OneCycle(0.5, TOTAL, pct_start=pct_start, anneal_strategy=strategy,
                        div_factor=20.0, final_div_factor=100.0, three_phase=three_phase)
    assert_matches(evaluate(schedule), rates)
    assert_matches(evaluate(schedule.momentum_schedule(0.8, 0.9)), momenta)


def test_stays_at_the_final_rate_after_total_steps():
    schedule = OneCycle(0.1, 100)
    assert_matches(evaluate(schedule, [99, 100, 150, 1000]), np.full(4, 0.1 / 25 / 1e4))


def test_momentum_schedule_carries_the_phase_layout():
    schedule = OneCycle(0.1, 500, pct_start=0.2, anneal_strategy="linear", three_phase=True)
    momentum = schedule.momentum_schedule(0.7, 0.99)
    assert isinstance(momentum, OneCycleMomentum)
    assert momentum.get_config() == OneCycleMomentum(
        500, pct_start=0.2, anneal_strategy="linear", three_phase=True,
        base_momentum=0.7, max_momentum=0.99,
    ).get_config()


def test_derived_rates():
    schedule = OneCycle(0.1, 100, div_factor=10.0, final_div_factor=50.0)
    assert schedule.initial_learning_rate == 0.1 / 10.0
    assert schedule.minimal_learning_rate == 0.1 / 10.0 / 50.0


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: OneCycle(0.1, 1), ValueError,
         "Argument `total_steps` must be an integer >= 2. Received: total_steps=1"),
        (lambda: OneCycle(0.1, 100, pct_start=1.0), ValueError,
         "Argument `pct_start` must be in (0, 1). Received: pct_start=1.0"),
        (lambda: OneCycle(0.1, 100, pct_start=0.01), ValueError,
         "Argument `pct_start` must be > 1 / total_steps = 0.01. Received: pct_start=0.01 "
         "The warmup phase would be empty."),
        (lambda: OneCycle(0.1, 100, pct_start=0.6, three_phase=True), ValueError,
         "Argument `pct_start` must leave steps for the third phase (pct_start < about 0.5). "
         "Received: pct_start=0.6"),
        (lambda: OneCycle(0.1, 100, anneal_strategy="exp"), ValueError,
         "Argument `anneal_strategy` must be one of 'cos', 'linear'. "
         "Received: anneal_strategy='exp'"),
        (lambda: OneCycle(0.1, 100, three_phase=1), TypeError,
         "Argument `three_phase` must be a bool. Received: three_phase=1 of type int"),
        (lambda: OneCycle(-0.1, 100), ValueError,
         "Argument `maximal_learning_rate` must be > 0. Received: maximal_learning_rate=-0.1"),
        (lambda: OneCycle(0.1, 100, div_factor=0), ValueError,
         "Argument `div_factor` must be > 0. Received: div_factor=0"),
        (lambda: OneCycle(0.1, 100, final_div_factor=-1.0), ValueError,
         "Argument `final_div_factor` must be > 0. Received: final_div_factor=-1.0"),
        (lambda: OneCycleMomentum(100, base_momentum=1.0), ValueError,
         "Argument `base_momentum` must be in [0, 1). Received: base_momentum=1.0"),
        (lambda: OneCycleMomentum(100, base_momentum=0.9, max_momentum=0.8), ValueError,
         "Argument `max_momentum` must be >= base_momentum=0.9. Received: max_momentum=0.8"),
    ],
)
def test_bad_arguments_raise_at_construction(make, error, message):
    with pytest.raises(error) as raised:
        make()
    assert str(raised.value) == message
