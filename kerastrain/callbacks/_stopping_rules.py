"""The pure decision rules of `EarlyStopping` (no Keras callback machinery)."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import math

import keras

from kerastrain import _compat, _validation


class StoppingReason(enum.Enum):
    """Why `EarlyStopping` stopped training."""

    NOT_STOPPED = "not_stopped"
    NO_IMPROVEMENT = "no_improvement"
    NOT_FINITE = "not_finite"
    THRESHOLD_REACHED = "threshold_reached"
    DIVERGED = "diverged"


@dataclasses.dataclass(frozen=True)
class EarlyStoppingPolicy:
    """The decision's parameters, with ``mode`` resolved to "min" or "max"."""

    monitor: str
    mode: str
    min_delta: float = 0.0
    patience: int = 0
    baseline: float | None = None
    start_from_epoch: int = 0
    check_finite: bool = True
    stopping_threshold: float | None = None
    divergence_threshold: float | None = None

    def better(self, current, reference):
        """Keras's improvement test: beyond ``reference`` by more than ``min_delta``."""
        if reference is None:
            return True
        if self.mode == "min":
            return current + self.min_delta < reference
        return current - self.min_delta > reference

    def beyond(self, current, threshold, towards_goal):
        """``current`` at or past ``threshold`` in the good (or the bad) direction."""
        good = current <= threshold if self.mode == "min" else current >= threshold
        bad = current > threshold if self.mode == "min" else current < threshold
        return good if towards_goal else bad


@dataclasses.dataclass(frozen=True)
class EarlyStoppingState:
    best: float | None = None
    best_epoch: int = 0
    wait: int = 0


@dataclasses.dataclass(frozen=True)
class Decision:
    state: EarlyStoppingState
    improved: bool
    reason: StoppingReason
    message: str = ""

    @property
    def stop(self):
        return self.reason is not StoppingReason.NOT_STOPPED


def decide(policy, state, current, epoch):
    """One epoch of early stopping (pure function).

    Order: a non-finite value stops at once (``check_finite``); so does a
    value past ``divergence_threshold``. Before ``start_from_epoch`` nothing
    else happens. Then Keras's rule: an improvement on the best value (by more
    than ``min_delta``) becomes the best, and resets the wait if it also beats
    ``baseline``; reaching ``stopping_threshold`` stops (goal reached);
    otherwise, once ``wait >= patience`` (and ``epoch > 0``), training stops.
    """
    name = f"`{policy.monitor}`"
    if policy.check_finite and not math.isfinite(current):
        return Decision(state, False, StoppingReason.NOT_FINITE,
                        f"{name} became {current} at epoch {epoch + 1}.")
    if policy.divergence_threshold is not None and policy.beyond(
            current, policy.divergence_threshold, towards_goal=False):
        return Decision(state, False, StoppingReason.DIVERGED,
                        f"{name}={current:.6g} passed divergence_threshold="
                        f"{policy.divergence_threshold:g} at epoch {epoch + 1}.")
    if epoch < policy.start_from_epoch:
        return Decision(state, False, StoppingReason.NOT_STOPPED)
    wait = state.wait + 1
    improved = policy.better(current, state.best)
    if improved:
        reset = policy.baseline is None or policy.better(current, policy.baseline)
        state = EarlyStoppingState(current, epoch, 0 if reset else wait)
    else:
        state = dataclasses.replace(state, wait=wait)
    if policy.stopping_threshold is not None and policy.beyond(
            current, policy.stopping_threshold, towards_goal=True):
        return Decision(state, improved, StoppingReason.THRESHOLD_REACHED,
                        f"{name}={current:.6g} reached stopping_threshold="
                        f"{policy.stopping_threshold:g} at epoch {epoch + 1}.")
    if not improved and state.wait >= policy.patience and epoch > 0:
        return Decision(state, improved, StoppingReason.NO_IMPROVEMENT,
                        f"{name} did not improve by more than {policy.min_delta:g} for "
                        f"{state.wait} epoch(s); best {state.best:.6g} at epoch "
                        f"{state.best_epoch + 1}.")
    return Decision(state, improved, StoppingReason.NOT_STOPPED)


def resolve_mode(monitor, mode, model=None, final=True):
    """"min" or "max": ``mode`` itself, or for "auto" from the name / metric direction.

    For "auto": names ending in ``loss`` fall; otherwise the direction of the
    model's metric of that name, or of the Keras metric registered under it
    (``"accuracy"``, ``"r2_score"``, ...). Unknown: ValueError if ``final``,
    else None (metrics are built at the first step; ask again later).
    """
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    if name == "loss" or name.endswith("_loss"):
        return "min"
    candidates = [metric for metric in _all_metrics(model) if metric.name == name]
    with contextlib.suppress(ValueError, TypeError):  # not a registered metric name
        candidates.append(keras.metrics.get(name))
    for metric in candidates:
        direction = _compat.metric_direction(metric)
        if direction is not None:
            return direction
    if not final:
        return None
    raise _validation.argument_error(
        "mode", "be 'min' or 'max' when the direction of the monitored metric is unknown",
        mode, f"Keras cannot tell whether `{monitor}` should fall or rise; "
        "pass mode='min' or mode='max'.",
    )


def _all_metrics(model):
    metrics = []
    for metric in getattr(model, "metrics", None) or []:
        metrics.extend(getattr(metric, "metrics", None) or [metric])
    return metrics
