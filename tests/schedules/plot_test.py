"""kerastrain.schedules.plot: one curve per schedule, with the schedule's values."""

import matplotlib
import numpy as np
import pytest

from kerastrain.schedules import SGDR, OneCycle, StepDecay, plot, values

matplotlib.use("Agg")


def test_plot_draws_the_schedule_values():
    schedule = SGDR(0.1, 20)
    figure = plot(schedule, 100)
    (axes,) = figure.axes
    (line,) = axes.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), np.arange(100))
    np.testing.assert_allclose(line.get_ydata(), values(schedule, 100), rtol=0)
    assert axes.get_title() == "SGDR"
    assert axes.get_xlabel() == "step" and axes.get_ylabel() == "learning rate"


def test_plot_of_several_schedules_on_given_axes():
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    curves = {"one-cycle": OneCycle(0.1, 50), "step": StepDecay(0.1, 10)}
    returned = plot(curves, [0, 10, 20, 49], ax=axes, title="two", log_scale=True)
    assert returned is figure
    lines = axes.get_lines()
    assert [line.get_label() for line in lines] == ["one-cycle", "step"]
    np.testing.assert_allclose(lines[1].get_ydata(), [0.1, 0.01, 0.001, 1e-5], rtol=1e-5)
    assert axes.get_yscale() == "log" and axes.get_title() == "two"
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["one-cycle", "step"]
    plt.close(figure)


def test_plot_rejects_bad_steps_and_non_schedules():
    with pytest.raises(ValueError) as raised:
        plot(SGDR(0.1, 20), 0)
    assert str(raised.value) == "Argument `steps` must be an integer >= 1. Received: steps=0"
    with pytest.raises(TypeError) as raised:
        plot({"bad": 0.1}, 10)
    assert str(raised.value) == (
        "Argument `schedule` must be a keras.optimizers.schedules.LearningRateSchedule. "
        "Received: schedule=0.1 of type float"
    )
