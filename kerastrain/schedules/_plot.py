"""Evaluating and plotting schedules over many steps."""

from __future__ import annotations

import numpy as np
from keras import ops

from kerastrain._validation import argument_error, check_integer, type_error
from kerastrain.schedules._base import LearningRateSchedule, Schedule


def _steps(steps):
    if isinstance(steps, (bool, np.bool_)):
        raise type_error("steps", "an integer or a sequence of integers", steps)
    if isinstance(steps, (int, np.integer)):
        return np.arange(check_integer("steps", int(steps), minimum=1))
    try:
        array = np.asarray(steps)
    except (TypeError, ValueError) as error:
        raise type_error("steps", "an integer or a sequence of integers", steps) from error
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.number):
        raise type_error("steps", "an integer or a 1-D sequence of integers", steps)
    if np.any(array < 0):
        raise argument_error("steps", "contain only steps >= 0", steps)
    return array


def values(schedule, steps):
    """The schedule's values at ``steps`` as a float64 numpy array.

    Args:
        schedule: any ``keras.optimizers.schedules.LearningRateSchedule``
            (kerastrain's are evaluated in one vectorized call; others step by step).
        steps: an integer ``n`` (steps ``0 .. n - 1``) or a 1-D sequence of steps.
    """
    if not isinstance(schedule, LearningRateSchedule):
        raise type_error("schedule", "a keras.optimizers.schedules.LearningRateSchedule",
                         schedule)
    steps = _steps(steps)
    if isinstance(schedule, Schedule):
        result = ops.convert_to_numpy(schedule(steps))
    else:
        result = [ops.convert_to_numpy(schedule(int(step))) for step in steps]
    return np.asarray(result, dtype=np.float64).reshape(steps.shape)


def _named(schedule):
    if isinstance(schedule, dict):
        return dict(schedule)
    if isinstance(schedule, (list, tuple)):
        return {type(item).__name__: item for item in schedule}
    return {type(schedule).__name__: schedule}


def plot(schedule, steps, ax=None, title=None, log_scale=False):
    """Plot a schedule (or several) against the step; returns the matplotlib figure.

    Args:
        schedule: a ``LearningRateSchedule``, a list of them, or a
            ``{label: schedule}`` dict (one curve each).
        steps: an integer ``n`` (steps ``0 .. n - 1``) or a 1-D sequence of steps.
        ax: a matplotlib ``Axes`` to draw on; default a new figure.
        title: the axes title; default the schedule's class name.
        log_scale: a logarithmic learning-rate axis. Default False.

    Example:
        >>> figure = plot(SGDR(0.1, 100), steps=700)
        >>> figure.savefig("sgdr.png")
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - matplotlib is a test dependency
        raise ImportError(
            "kerastrain.schedules.plot needs matplotlib: pip install matplotlib"
        ) from error
    curves = _named(schedule)
    step_array = _steps(steps)
    curve_values = {label: values(item, step_array) for label, item in curves.items()}
    if ax is None:
        figure, ax = plt.subplots(figsize=(6, 3.5))
    else:
        figure = ax.figure
    for label, curve in curve_values.items():
        ax.plot(step_array, curve, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    if log_scale:
        ax.set_yscale("log")
    ax.set_title(title if title is not None else ", ".join(curves))
    if len(curves) > 1:
        ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return figure
