"""SGDR against the paper's formula (float64 numpy), PyTorch and Keras's CosineDecayRestarts."""

import math

import keras
import numpy as np
import pytest
import torch
from _schedule_helpers import STEPS, assert_matches, evaluate, keras_values, torch_lrs

from kerastrain.schedules import SGDR

pytestmark = pytest.mark.usefixtures("float64")


def sgdr_reference(a0, first, t_mul, m_mul, alpha, warmup, steps=STEPS):
    """Loshchilov & Hutter 2017, eq. (5), cycle by cycle (no closed-form logarithm)."""
    values = []
    for t in steps:
        index, start, length = 0, 0.0, float(first)
        while t >= start + length:
            start, length, index = start + length, length * t_mul, index + 1
        position = t - start
        peak = alpha + (1 - alpha) * m_mul ** index
        if position < warmup:
            value = alpha + (peak - alpha) * position / warmup
        else:
            fraction = (position - warmup) / (length - warmup)
            value = alpha + (peak - alpha) * 0.5 * (1 + math.cos(math.pi * fraction))
        values.append(a0 * value)
    return values


@pytest.mark.parametrize(
    ("first", "t_mul", "m_mul", "alpha", "warmup"),
    [
        (50, 1.0, 1.0, 0.0, 0),
        (20, 2.0, 1.0, 0.0, 0),
        (8, 1.5, 0.8, 0.05, 0),
        (30, 3.0, 0.5, 0.1, 0),
        (40, 2.0, 0.9, 0.01, 10),
        (25, 1.0, 1.0, 0.0, 5),
    ],
)
def test_matches_reference(first, t_mul, m_mul, alpha, warmup):
    # atol: cos(pi * f) near f = 1 leaves ~1e-17 absolute noise on a 0 floor.
    expected = sgdr_reference(0.1, first, t_mul, m_mul, alpha, warmup)
    schedule = SGDR(0.1, first, t_mul=t_mul, m_mul=m_mul, alpha=alpha, warmup_steps=warmup)
    assert_matches(evaluate(schedule), expected, atol=1e-15)


@pytest.mark.parametrize(("first", "t_mul", "alpha"), [(50, 1, 0.0), (10, 2, 0.1), (7, 3, 0.02)])
def test_matches_torch_cosine_annealing_warm_restarts(first, t_mul, alpha):
    def make(optimizer):
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=first, T_mult=t_mul, eta_min=alpha * 0.1
        )

    rates, _ = torch_lrs(make, len(STEPS), learning_rate=0.1)
    actual = evaluate(SGDR(0.1, first, t_mul=float(t_mul), alpha=alpha))
    assert_matches(actual, rates, atol=1e-15)


@pytest.mark.parametrize(("t_mul", "m_mul", "alpha"), [(1.0, 1.0, 0.0), (2.0, 0.7, 0.1),
                                                       (1.5, 0.9, 0.0)])
def test_matches_keras_cosine_decay_restarts(t_mul, m_mul, alpha):
    keras_schedule = keras.optimizers.schedules.CosineDecayRestarts(
        0.1, 16, t_mul=t_mul, m_mul=m_mul, alpha=alpha
    )
    steps = STEPS[:600:7]
    expected = keras_values(keras_schedule, steps)
    actual = evaluate(SGDR(0.1, 16, t_mul=t_mul, m_mul=m_mul, alpha=alpha), steps)
    # Keras computes in float32.
    assert_matches(actual, expected, rtol=1e-5, atol=1e-7)


def test_restarts_land_exactly_on_cycle_boundaries():
    schedule = SGDR(1.0, 10, t_mul=2.0)
    starts = np.array([0, 10, 30, 70, 150, 310, 630])
    assert_matches(evaluate(schedule, starts), np.ones(len(starts)))
    lengths = np.diff(starts)  # each cycle's last step sits at f = (L - 1) / L
    last = 0.5 * (1 + np.cos(np.pi * (lengths - 1) / lengths))
    assert_matches(evaluate(schedule, starts[1:] - 1), last, scale=1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"first_decay_steps": 0},
         "Argument `first_decay_steps` must be an integer >= 1. Received: first_decay_steps=0"),
        ({"first_decay_steps": 10, "t_mul": 0.5},
         "Argument `t_mul` must be >= 1. Received: t_mul=0.5 Cycles that shrink "
         "geometrically end after a finite number of steps."),
        ({"first_decay_steps": 10, "t_mul": -1.0},
         "Argument `t_mul` must be > 0. Received: t_mul=-1.0"),
        ({"first_decay_steps": 10, "m_mul": 0.0},
         "Argument `m_mul` must be > 0. Received: m_mul=0.0"),
        ({"first_decay_steps": 10, "alpha": 1.5},
         "Argument `alpha` must be in [0, 1]. Received: alpha=1.5"),
        ({"first_decay_steps": 10, "warmup_steps": -1},
         "Argument `warmup_steps` must be an integer >= 0. Received: warmup_steps=-1"),
        ({"first_decay_steps": 10, "warmup_steps": 10},
         "Argument `warmup_steps` must be < first_decay_steps=10. Received: warmup_steps=10"),
    ],
)
def test_bad_arguments_raise_at_construction(kwargs, message):
    with pytest.raises(ValueError) as raised:
        SGDR(0.1, **kwargs)
    assert str(raised.value) == message
