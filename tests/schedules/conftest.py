"""Fixtures shared by the schedule tests."""

import keras
import pytest


@pytest.fixture
def float64():
    """Compute schedules in float64 (JAX's 64-bit mode on), restored afterwards."""
    previous_floatx = keras.config.floatx()
    previous_x64 = None
    if keras.config.backend() == "jax":
        import jax

        previous_x64 = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", True)
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx(previous_floatx)
    if previous_x64 is not None:
        import jax

        jax.config.update("jax_enable_x64", previous_x64)
