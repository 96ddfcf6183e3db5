"""Scaled: formula, save and reload, its factor and floor as a variable (an assign)."""

import keras
import numpy as np
import pytest
from _schedule_helpers import assert_matches, evaluate

from kerastrain.schedules import SGDR, Scaled
from kerastrain.testing import TestCase


@pytest.mark.usefixtures("float64")
def test_scaled_matches_reference():
    base = SGDR(0.1, 100, t_mul=1.0)
    expected = [max(0.3 * b, min(0.01, b)) for b in evaluate(base)]
    assert_matches(evaluate(Scaled(base, factor=0.3, min_learning_rate=0.01)), expected)


def test_scaled_round_trips_with_its_factor():
    schedule = Scaled(SGDR(0.1, 10), factor=0.25, min_learning_rate=1e-4)
    revived = TestCase().run_serialization_test(schedule)
    assert revived.factor == 0.25 and isinstance(revived.schedule, SGDR)


def test_setting_factor_and_floor_assigns_the_variable():
    schedule = Scaled(SGDR(0.1, 10), factor=0.5, min_learning_rate=0.01)
    variable = schedule.state_variable
    assert isinstance(variable, keras.Variable) and not variable.trainable
    schedule.factor = 0.25
    schedule.min_learning_rate = 0.02
    assert schedule.state_variable is variable  # the same variable, assigned
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [0.25, 0.02], rtol=1e-7)
    assert schedule.get_config()["factor"] == 0.25
    assert schedule.get_config()["min_learning_rate"] == 0.02
    base = evaluate(SGDR(0.1, 10), [0, 9])
    expected = [max(0.25 * b, min(0.02, b)) for b in base]
    np.testing.assert_allclose(evaluate(schedule, [0, 9]), expected, rtol=1e-6)
    with pytest.raises(ValueError, match=r"^Argument `factor` must be > 0. Received: factor=0$"):
        schedule.factor = 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"factor": 0.0}, ValueError, "Argument `factor` must be > 0. Received: factor=0.0"),
        ({"min_learning_rate": -1.0}, ValueError,
         "Argument `min_learning_rate` must be >= 0. Received: min_learning_rate=-1.0"),
    ],
)
def test_bad_scaled_arguments_raise_at_construction(kwargs, error, message):
    with pytest.raises(error) as raised:
        Scaled(SGDR(0.1, 10), **kwargs)
    assert str(raised.value) == message
