"""The one-cycle policy (Smith 2018) and its inverse momentum cycle, PyTorch-exact."""

from __future__ import annotations

import keras
from keras import ops

from kerastrain._validation import argument_error, check_in_range, check_one_of, check_type
from kerastrain.schedules._base import (
    Schedule,
    check_rate,
    check_steps,
    cosine_anneal,
    linear_anneal,
)

_register = keras.saving.register_keras_serializable(package="kerastrain")

_ANNEAL = {"cos": cosine_anneal, "linear": linear_anneal}


class _OneCyclePhases(Schedule):
    """The phase layout of PyTorch's ``OneCycleLR``, shared by rate and momentum."""

    def __init__(self, total_steps, pct_start, anneal_strategy, three_phase, name):
        super().__init__(name)
        self.total_steps = check_steps("total_steps", total_steps, minimum=2)
        self.pct_start = check_in_range("pct_start", pct_start, 0.0, 1.0, False, False)
        self.anneal_strategy = check_one_of("anneal_strategy", anneal_strategy, _ANNEAL)
        self.three_phase = check_type("three_phase", three_phase, bool, "a bool")
        warmup_end = self.pct_start * self.total_steps - 1.0
        if warmup_end <= 0.0:
            raise argument_error(
                "pct_start", f"be > 1 / total_steps = {1.0 / self.total_steps:g}", pct_start,
                "The warmup phase would be empty.",
            )
        if self.three_phase and 2.0 * warmup_end >= self.total_steps - 1.0:
            raise argument_error(
                "pct_start", "leave steps for the third phase (pct_start < about 0.5)",
                pct_start,
            )

    def _phase_ends(self):
        """PyTorch's ``end_step`` of each phase (floats, as PyTorch computes them)."""
        up = float(self.pct_start * self.total_steps) - 1.0
        last = float(self.total_steps) - 1.0
        if self.three_phase:
            return [up, float(2.0 * self.pct_start * self.total_steps) - 2.0, last]
        return [up, last]

    def _phase_values(self):
        """The value at the start of each phase and at the very end."""
        raise NotImplementedError

    def _compute(self, step, dtype):
        anneal = _ANNEAL[self.anneal_strategy]
        values = self._phase_values()
        start = 0.0
        result = None
        for index, end in enumerate(self._phase_ends()):
            fraction = ops.clip((step - start) / (end - start), 0.0, 1.0)
            value = anneal(values[index], values[index + 1], fraction)
            result = value if result is None else ops.where(step > start, value, result)
            start = end
        return result

    def _phases_config(self):
        return {
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "anneal_strategy": self.anneal_strategy,
            "three_phase": self.three_phase,
            **self._base_config(),
        }


@_register
class OneCycle(_OneCyclePhases):
    """The one-cycle learning rate: warm up to the maximum, then anneal far below the start.

    Formula (Smith 2018, as PyTorch's ``OneCycleLR`` computes it), with
    ``a_init = maximal_learning_rate / div_factor`` and
    ``a_min = a_init / final_div_factor``: the rate goes from ``a_init`` to
    ``maximal_learning_rate`` until step ``pct_start * total_steps - 1``, then
    to ``a_min`` at step ``total_steps - 1`` (two phases); with
    ``three_phase=True`` it goes back to ``a_init`` at step
    ``2 * pct_start * total_steps - 2`` first, then to ``a_min``. Each piece
    follows ``anneal_strategy``: ``"cos"``
    (``end + (start - end) / 2 * (1 + cos(pi * f))``) or ``"linear"``.

    Values equal PyTorch's ``OneCycleLR(max_lr=maximal_learning_rate, ...)``
    step for step, for steps ``0 .. total_steps - 1``; afterwards the rate
    stays at ``a_min`` (PyTorch raises an error there).

    The matching inverse momentum cycle (momentum high when the rate is low)
    is `OneCycleMomentum`, obtained with `momentum_schedule`; pass it as an
    optimizer's ``momentum`` / ``beta_1`` where the optimizer accepts a schedule.

    Args:
        maximal_learning_rate: the peak rate, > 0.
        total_steps: the number of training steps, an integer >= 2.
        pct_start: fraction of the steps spent warming up, in (0, 1). Default 0.3.
        anneal_strategy: ``"cos"`` (default) or ``"linear"``.
        div_factor: ``a_init = maximal_learning_rate / div_factor``, > 0. Default 25.
        final_div_factor: ``a_min = a_init / final_div_factor``, > 0. Default 1e4.
        three_phase: use the three-phase variant. Default False.
        name: optional name scope.

    Example:
        >>> schedule = OneCycle(0.1, total_steps=epochs * steps_per_epoch)
        >>> optimizer = keras.optimizers.SGD(schedule, momentum=0.9)

    Reference:
        Smith, "A disciplined approach to neural network hyper-parameters:
        Part 1", arXiv:1803.09820, 2018; Smith & Topin, "Super-Convergence", 2017.
    """

    def __init__(self, maximal_learning_rate, total_steps, pct_start=0.3, anneal_strategy="cos",
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, name="OneCycle"):
        super().__init__(total_steps, pct_start, anneal_strategy, three_phase, name)
        self.maximal_learning_rate = check_rate("maximal_learning_rate", maximal_learning_rate)
        self.div_factor = check_rate("div_factor", div_factor)
        self.final_div_factor = check_rate("final_div_factor", final_div_factor)

    @property
    def initial_learning_rate(self):
        """The rate at step 0: ``maximal_learning_rate / div_factor``."""
        return self.maximal_learning_rate / self.div_factor

    @property
    def minimal_learning_rate(self):
        """The final rate: ``initial_learning_rate / final_div_factor``."""
        return self.initial_learning_rate / self.final_div_factor

    def _phase_values(self):
        start, peak = self.initial_learning_rate, self.maximal_learning_rate
        if self.three_phase:
            return [start, peak, start, self.minimal_learning_rate]
        return [start, peak, self.minimal_learning_rate]

    def momentum_schedule(self, base_momentum=0.85, max_momentum=0.95):
        """The inverse momentum cycle for this schedule (a `OneCycleMomentum`)."""
        return OneCycleMomentum(
            self.total_steps, pct_start=self.pct_start, anneal_strategy=self.anneal_strategy,
            three_phase=self.three_phase, base_momentum=base_momentum,
            max_momentum=max_momentum,
        )

    def get_config(self):
        return {
            "maximal_learning_rate": self.maximal_learning_rate,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            **self._phases_config(),
        }


@_register
class OneCycleMomentum(_OneCyclePhases):
    """The one-cycle momentum (or Adam ``beta_1``): low while the rate is high.

    Formula: the phases of `OneCycle` with the same ``total_steps``,
    ``pct_start``, ``anneal_strategy`` and ``three_phase``; momentum goes from
    ``max_momentum`` down to ``base_momentum`` while the rate rises, and back
    up to ``max_momentum`` while it falls (three phases: down, up, then flat
    at ``max_momentum``). Equals the momentum PyTorch's ``OneCycleLR`` sets
    with ``cycle_momentum=True``, step for step.

    Args:
        total_steps, pct_start, anneal_strategy, three_phase, name: as in `OneCycle`.
        base_momentum: the lowest momentum, in [0, 1). Default 0.85.
        max_momentum: the highest momentum, in [base_momentum, 1). Default 0.95.

    Example:
        >>> rate = OneCycle(0.1, total_steps=1000)
        >>> momentum = rate.momentum_schedule()   # a OneCycleMomentum

    Reference:
        Smith, "A disciplined approach to neural network hyper-parameters:
        Part 1", arXiv:1803.09820, 2018.
    """

    def __init__(self, total_steps, pct_start=0.3, anneal_strategy="cos", three_phase=False,
                 base_momentum=0.85, max_momentum=0.95, name="OneCycleMomentum"):
        super().__init__(total_steps, pct_start, anneal_strategy, three_phase, name)
        self.base_momentum = check_in_range("base_momentum", base_momentum, 0.0, 1.0,
                                            high_inclusive=False)
        self.max_momentum = check_in_range("max_momentum", max_momentum, 0.0, 1.0,
                                           high_inclusive=False)
        if self.max_momentum < self.base_momentum:
            raise argument_error("max_momentum", f"be >= base_momentum={base_momentum!r}",
                                 max_momentum)

    def _phase_values(self):
        low, high = self.base_momentum, self.max_momentum
        if self.three_phase:
            return [high, low, high, high]
        return [high, low, high]

    def get_config(self):
        return {
            "base_momentum": self.base_momentum,
            "max_momentum": self.max_momentum,
            **self._phases_config(),
        }
