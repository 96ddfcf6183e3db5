"""Constant and as_schedule (a number becomes a Constant schedule)."""

import numpy as np
import pytest
from _schedule_helpers import STEPS, assert_matches, evaluate

from kerastrain.schedules import SGDR, Constant
from kerastrain.schedules._constant import as_schedule

pytestmark = pytest.mark.usefixtures("float64")


def test_constant_matches_reference():
    assert_matches(evaluate(Constant(0.25)), np.full(len(STEPS), 0.25))


def test_as_schedule_keeps_schedules_and_wraps_numbers():
    schedule = SGDR(0.1, 10)
    assert as_schedule("schedule", schedule) is schedule
    wrapped = as_schedule("schedule", 3)
    assert isinstance(wrapped, Constant) and wrapped.learning_rate == 3


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Constant(-1.0), ValueError,
         "Argument `learning_rate` must be >= 0. Received: learning_rate=-1.0"),
        (lambda: as_schedule("schedule", "0.1"), TypeError,
         "Argument `schedule` must be a keras.optimizers.schedules.LearningRateSchedule or a "
         "number. Received: schedule='0.1' of type str"),
        (lambda: as_schedule("schedule", True), TypeError,
         "Argument `schedule` must be a keras.optimizers.schedules.LearningRateSchedule or a "
         "number. Received: schedule=True of type bool"),
        (lambda: as_schedule("schedule", -0.5), ValueError,
         "Argument `schedule` must be >= 0. Received: schedule=-0.5"),
    ],
)
def test_bad_arguments_raise(make, error, message):
    with pytest.raises(error) as raised:
        make()
    assert str(raised.value) == message
