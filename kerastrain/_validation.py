"""The one place where argument-error messages are worded.

Every public constructor in kerastrain validates its arguments through these
helpers, so that users always read the same shape of message::

    Argument `beta_1` must be in [0, 1). Received: beta_1=1.5

followed, where the fix is not obvious, by one sentence saying how to fix it.
Bad values raise `ValueError`, bad types raise `TypeError`; nothing here uses
`assert`, and nothing silently replaces a bad value.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

__all__ = [
    "argument_error",
    "check_finite_number",
    "check_in_range",
    "check_integer",
    "check_number",
    "check_one_of",
    "check_positive",
    "check_type",
    "type_error",
]


def _received(name: str, value: Any) -> str:
    return f"Received: {name}={value!r}"


def _with_hint(message: str, hint: str | None) -> str:
    return f"{message} {hint}" if hint else message


def argument_error(name: str, requirement: str, value: Any, hint: str | None = None) -> ValueError:
    """Return (not raise) a `ValueError` worded the kerastrain way.

    Args:
        name: the argument's name, as the user wrote it.
        requirement: what the argument must be, e.g. ``"be positive"``.
        value: the value received.
        hint: optional sentence telling the user how to fix it.
    """
    message = f"Argument `{name}` must {requirement}. {_received(name, value)}"
    return ValueError(_with_hint(message, hint))


def type_error(name: str, expected: str, value: Any, hint: str | None = None) -> TypeError:
    """Return (not raise) a `TypeError` worded the kerastrain way."""
    message = (
        f"Argument `{name}` must be {expected}. "
        f"{_received(name, value)} of type {type(value).__name__}"
    )
    return TypeError(_with_hint(message, hint))


def check_type(name: str, value: Any, types: type | tuple[type, ...], expected: str,
               hint: str | None = None) -> Any:
    """Raise `TypeError` unless `value` is an instance of `types`."""
    if not isinstance(value, types):
        raise type_error(name, expected, value, hint)
    return value


def check_number(name: str, value: Any, hint: str | None = None) -> float:
    """Accept an int or float (not bool) and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise type_error(name, "a number (int or float)", value, hint)
    return float(value)


def check_finite_number(name: str, value: Any, hint: str | None = None) -> float:
    """Accept a finite int or float and return it as a float."""
    number = check_number(name, value, hint)
    if not math.isfinite(number):
        raise argument_error(name, "be a finite number", value, hint)
    return number


def check_integer(name: str, value: Any, minimum: int | None = None,
                  hint: str | None = None) -> int:
    """Accept an integer (not bool, not float), optionally at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise type_error(name, "an integer", value, hint)
    if minimum is not None and value < minimum:
        raise argument_error(name, f"be an integer >= {minimum}", value, hint)
    return int(value)


def check_positive(name: str, value: Any, allow_zero: bool = False,
                   hint: str | None = None) -> float:
    """Accept a finite number > 0 (or >= 0 with `allow_zero`)."""
    number = check_finite_number(name, value, hint)
    if allow_zero and number < 0:
        raise argument_error(name, "be >= 0", value, hint)
    if not allow_zero and number <= 0:
        raise argument_error(name, "be > 0", value, hint)
    return number


def check_in_range(name: str, value: Any, low: float, high: float,
                   low_inclusive: bool = True, high_inclusive: bool = True,
                   hint: str | None = None) -> float:
    """Accept a finite number inside an interval; the message shows the interval."""
    number = check_finite_number(name, value, hint)
    above = number >= low if low_inclusive else number > low
    below = number <= high if high_inclusive else number < high
    if not (above and below):
        interval = (
            ("[" if low_inclusive else "(")
            + f"{low:g}, {high:g}"
            + ("]" if high_inclusive else ")")
        )
        raise argument_error(name, f"be in {interval}", value, hint)
    return number


def check_one_of(name: str, value: Any, choices: Iterable[Any], hint: str | None = None) -> Any:
    """Accept one of `choices`; the message lists them."""
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        raise argument_error(name, f"be one of {listed}", value, hint)
    return value
