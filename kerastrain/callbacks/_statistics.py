"""Reading the gradient statistics that optimizers record inside `apply()`.

Every kerastrain optimizer, and any Keras optimizer wrapped by
`kerastrain.optimizers.monitored`, exposes ``gradient_statistics()``
(``global_norm``, ``gradient_norms``, ``update_ratios``) and
``statistics_variable_paths``. The callbacks never replace the user's
optimizer (``opt is model.optimizer`` stays true, and a saved model holds the
class it was compiled with): a plain Keras optimizer records nothing, so
`fit` stops before the first step with an error saying to compile with
``monitored(opt)``.

Optimizers record at a schedule (by default the first step and every 20th).
A `StatisticsCallback` moves that schedule, for the duration of `fit`, onto
exactly the steps it logs: the last step of each epoch, or every
``update_freq``-th step. Several callbacks on one optimizer get a schedule
that covers all of them (`combined_schedule`).
"""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np

from kerastrain import _validation
from kerastrain.callbacks import _common

_HOW_TO = (
    "Compile with a kerastrain optimizer, or wrap yours: "
    "model.compile(optimizer=kerastrain.optimizers.monitored(keras.optimizers.Adam()), ...)."
)


def statistics_source(optimizer):
    """The optimizer whose statistics describe ``optimizer``'s steps.

    ``optimizer`` itself, or for a `keras.optimizers.LossScaleOptimizer`
    (mixed precision) its inner optimizer: the one that gets the unscaled
    gradients.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.inner_optimizer
    return optimizer


def has_statistics(optimizer):
    optimizer = statistics_source(optimizer)
    return callable(getattr(optimizer, "gradient_statistics", None)) and hasattr(
        optimizer, "statistics_variable_paths"
    )


def check_statistics(model, callback_name):
    """Raise ValueError (before training) if ``model.optimizer`` records no statistics."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError(
            f"{callback_name} needs a compiled model. Received: model.optimizer=None. "
            "Call model.compile(optimizer=..., loss=...) before fit()."
        )
    if has_statistics(optimizer):
        optimizer = statistics_source(optimizer)
        if getattr(optimizer, "record_statistics", True) is False:
            raise ValueError(
                f"Argument `optimizer` must record gradient statistics for {callback_name}. "
                f"Received: optimizer={optimizer.name!r} with record_statistics=False. "
                "Create it with record_statistics=True."
            )
        return
    optimizer = statistics_source(optimizer)
    raise ValueError(
        f"Argument `optimizer` must record gradient statistics for {callback_name}. "
        f"Received: optimizer={optimizer.name!r} of type {type(optimizer).__name__}. "
        f"{_HOW_TO} (kerastrain does not replace the compiled optimizer for you.)"
    )


def read_statistics(model):
    """``{"global_norm": float, "gradient_norms": array, "update_ratios": array,
    "step": int, "paths": list}`` as numpy, read through ``model`` (syncs JAX state)."""
    optimizer = statistics_source(model.optimizer)
    values = optimizer.gradient_statistics()
    return {
        "global_norm": float(keras.ops.convert_to_numpy(values["global_norm"])),
        "gradient_norms": np.asarray(keras.ops.convert_to_numpy(values["gradient_norms"])),
        "update_ratios": np.asarray(keras.ops.convert_to_numpy(values["update_ratios"])),
        "step": int(keras.ops.convert_to_numpy(values["step"])),
        "paths": list(optimizer.statistics_variable_paths),
    }


def combined_schedule(requests):
    """One recording schedule serving every request (pure function).

    Args:
        requests: iterable of ``(every, offset)``: record where
            ``(iterations - offset) % every == 0``.

    Returns:
        ``(every, offset)`` recording at least at every requested step: the
        requests' common period (gcd) if their offsets agree modulo it, else
        every step; None for no request.
    """
    requests = list(requests)
    if not requests:
        return None
    every = math.gcd(*(period for period, _ in requests))
    offsets = {offset % every for _, offset in requests}
    return (every, offsets.pop()) if len(offsets) == 1 else (1, 0)


# Held by the optimizer itself (no module-level registry): the callbacks sharing
# one optimizer know nothing of each other and meet there, the schedule they
# share covers all of them, and the requests go away with the optimizer. Each
# callback withdraws its entry at the end of `fit`.
_REQUESTS_ATTRIBUTE = "_kerastrain_statistics_requests"


def _requests(optimizer):
    """``{callback id: (every, offset)}`` of the callbacks logging ``optimizer``."""
    requests = optimizer.__dict__.get(_REQUESTS_ATTRIBUTE)
    if requests is None:
        requests = {}
        # Keras optimizers track the attributes they are given; this is not state.
        object.__setattr__(optimizer, _REQUESTS_ATTRIBUTE, requests)
    return requests


def _reschedule(optimizer):
    schedule = combined_schedule(_requests(optimizer).values())
    if schedule is None:
        optimizer.schedule_statistics()  # back to the optimizer's own statistics_every
    else:
        optimizer.schedule_statistics(*schedule)


def request_statistics(optimizer, owner, every, offset):
    """Have ``optimizer`` record where ``(iterations - offset) % every == 0`` (for ``owner``)."""
    _requests(optimizer)[id(owner)] = (every, offset % every)
    _reschedule(optimizer)


def release_statistics(optimizer, owner):
    """Withdraw ``owner``'s request; with none left, the optimizer's own schedule returns."""
    if _requests(optimizer).pop(id(owner), None) is None:
        return
    _reschedule(optimizer)


class StatisticsCallback(_common.StepCallback):
    """A `StepCallback` logging the optimizer's gradient statistics.

    Needs an optimizer that records them (any kerastrain optimizer, or
    ``monitored(opt)`` for any other): `fit` raises before the first step
    otherwise; the compiled optimizer is never replaced. During `fit` the
    optimizer records at exactly the steps this callback logs: the last step
    of each epoch (``update_freq="epoch"``; every step when the dataset's
    length is unknown) or the steps that complete a multiple of
    ``update_freq``. Other steps pay nothing.

    ``wrap_optimizer`` is deprecated: ``True`` (wrap a plain Keras optimizer
    in place) is no longer done, and warns; ``False`` is what always happens.
    """

    def __init__(self, log_dir=None, update_freq="epoch", wrap_optimizer=False):
        super().__init__(log_dir, update_freq)
        self.wrap_optimizer = _validation.check_type(
            "wrap_optimizer", wrap_optimizer, bool, "True or False")
        if wrap_optimizer:
            warnings.warn(
                f"{type(self).__name__}(wrap_optimizer=True) is deprecated and no longer "
                "wraps the optimizer (kerastrain does not replace model.optimizer). "
                "Compile with a kerastrain optimizer or kerastrain.optimizers.monitored(opt).",
                DeprecationWarning, stacklevel=2,
            )

    def _check_model(self, model):
        check_statistics(model, type(self).__name__)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._optimizer = statistics_source(self.model.optimizer)
        self._train_start = self._step_count
        if self.update_freq != "epoch":
            self._request(self.update_freq, self.update_freq - 1)
            return
        steps = (self.params or {}).get("steps")
        # The last step of each epoch: iterations = start + k * steps - 1. With a
        # dataset of unknown length, every step (Keras's TF trainer then also counts
        # one optimizer iteration more per epoch than there are batches, so the epoch
        # length cannot be learned from the iterations either).
        if steps:
            self._request(steps, self._train_start - 1)
        else:
            self._request(1, 0)

    def _request(self, every, offset):
        request_statistics(self._optimizer, self, every, offset)

    def read(self, step):
        """``(statistics, step)``: the statistics (`read_statistics`) and the
        step to log them at: the epoch, or the step they were recorded at."""
        statistics = read_statistics(self.model)
        if self.update_freq != "epoch" and statistics["step"] > 0:
            step = statistics["step"]
        return statistics, step

    def on_train_end(self, logs=None):
        optimizer = getattr(self, "_optimizer", None)
        if optimizer is not None:
            release_statistics(optimizer, self)
        super().on_train_end(logs)
