"""The wording of every argument error, asserted exactly."""

import math

import pytest

from kerastrain import _validation as v


def test_argument_error_shape():
    error = v.argument_error("beta_1", "be in [0, 1)", 1.5)
    assert isinstance(error, ValueError)
    assert str(error) == "Argument `beta_1` must be in [0, 1). Received: beta_1=1.5"


def test_argument_error_with_hint():
    error = v.argument_error("patience", "be >= 0", -1, "Use 0 to stop at once.")
    assert str(error) == "Argument `patience` must be >= 0. Received: patience=-1 Use 0 to stop at once."


def test_type_error_shape():
    error = v.type_error("units", "an integer", "8")
    assert isinstance(error, TypeError)
    assert str(error) == "Argument `units` must be an integer. Received: units='8' of type str"


def test_check_type():
    assert v.check_type("x", 3, int, "an integer") == 3
    with pytest.raises(TypeError, match=r"^Argument `x` must be an integer. Received: x=3.0 of type float$"):
        v.check_type("x", 3.0, int, "an integer")


def test_check_number_accepts_ints_and_rejects_bools():
    assert v.check_number("rate", 1) == 1.0
    assert isinstance(v.check_number("rate", 1), float)
    with pytest.raises(TypeError, match=r"Argument `rate` must be a number \(int or float\). Received: rate=True of type bool"):
        v.check_number("rate", True)
    with pytest.raises(TypeError, match=r"Received: rate='0.1' of type str"):
        v.check_number("rate", "0.1")


def test_check_finite_number():
    with pytest.raises(ValueError, match=r"^Argument `epsilon` must be a finite number. Received: epsilon=nan$"):
        v.check_finite_number("epsilon", math.nan)
    with pytest.raises(ValueError, match=r"Received: epsilon=inf"):
        v.check_finite_number("epsilon", math.inf)


def test_check_integer():
    assert v.check_integer("steps", 3, minimum=1) == 3
    with pytest.raises(ValueError, match=r"^Argument `steps` must be an integer >= 1. Received: steps=0$"):
        v.check_integer("steps", 0, minimum=1)
    with pytest.raises(TypeError, match=r"^Argument `steps` must be an integer. Received: steps=2.0 of type float$"):
        v.check_integer("steps", 2.0)
    with pytest.raises(TypeError, match=r"Received: steps=False of type bool"):
        v.check_integer("steps", False)


def test_check_positive():
    assert v.check_positive("learning_rate", 0.1) == 0.1
    assert v.check_positive("decay", 0, allow_zero=True) == 0.0
    with pytest.raises(ValueError, match=r"^Argument `learning_rate` must be > 0. Received: learning_rate=0$"):
        v.check_positive("learning_rate", 0)
    with pytest.raises(ValueError, match=r"^Argument `decay` must be >= 0. Received: decay=-0.5$"):
        v.check_positive("decay", -0.5, allow_zero=True)


def test_check_in_range_shows_the_interval():
    assert v.check_in_range("beta_1", 0, 0, 1, high_inclusive=False) == 0.0
    with pytest.raises(ValueError, match=r"^Argument `beta_1` must be in \[0, 1\). Received: beta_1=1.5$"):
        v.check_in_range("beta_1", 1.5, 0, 1, high_inclusive=False)
    with pytest.raises(ValueError, match=r"^Argument `gamma` must be in \(0, 1\]. Received: gamma=0$"):
        v.check_in_range("gamma", 0, 0, 1, low_inclusive=False)


def test_check_one_of_lists_the_choices():
    assert v.check_one_of("mode", "min", ["min", "max"]) == "min"
    with pytest.raises(ValueError, match=r"^Argument `mode` must be one of 'min', 'max'. Received: mode='avg'$"):
        v.check_one_of("mode", "avg", ["min", "max"])
