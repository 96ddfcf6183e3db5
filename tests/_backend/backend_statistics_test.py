"""The backend pieces of gradient-statistics recording (`_backend/_statistics.py`),
each against numpy, on whichever backend the suite runs (KERAS_BACKEND)."""

import ast
import pathlib

import keras
import numpy as np

from kerastrain import _backend
from kerastrain.testing import TestCase

OPTIMIZERS = pathlib.Path(__file__).parents[2] / "kerastrain" / "optimizers"


class BackendStatisticsTest(TestCase):
    def test_squared_norm_matches_numpy(self):
        for dtype in ("float32", "float16"):
            value = self.rng.normal(size=(7, 5)).astype(dtype)
            result = _backend.squared_norm(keras.ops.convert_to_tensor(value))
            self.assertEqual(keras.backend.standardize_dtype(result.dtype), "float32")
            # float16 values squared in float32: exact up to float32 rounding.
            self.assertAllClose(result, np.sum(value.astype(np.float64) ** 2), rtol=1e-6)

    def test_assign_where_assigns_only_when_recording(self):
        target = keras.Variable(np.zeros(3, "float32"))
        calls = []

        def compute():
            calls.append(1)
            return (keras.ops.ones(3),)

        _backend.assign_where(keras.ops.convert_to_tensor(False), (target,), compute)
        self.assertAllClose(target, np.zeros(3))
        returned = _backend.assign_where(keras.ops.convert_to_tensor(True), (target,), compute)
        self.assertAllClose(target, np.ones(3))
        self.assertEqual(len(calls), 1)  # eager: `compute` runs on recording steps only
        if _backend.record_before_update():
            self.assertAllClose(returned[0], np.ones(3))  # what the update is ordered after
        else:
            self.assertIsNone(returned)

    def test_snapshot_holds_the_values_before_an_update(self):
        variable = keras.Variable(np.arange(4, dtype="float32"))
        before = _backend.snapshot([variable], keras.ops.convert_to_tensor(True))
        variable.assign(np.full(4, 9.0, "float32"))
        self.assertAllClose(before[0], np.arange(4))

    def test_concrete_bool_in_eager_mode(self):
        self.assertIs(_backend.concrete_bool(keras.ops.convert_to_tensor(True)), True)
        self.assertIs(_backend.concrete_bool(keras.ops.convert_to_tensor(False)), False)


def test_optimizers_never_ask_the_backend_name():
    """The optimizer core has no ``if backend == ...``: no call of ``backend()``."""
    found = []
    for path in sorted(OPTIMIZERS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "backend"):
                found.append(f"{path.name}:{node.lineno}")
    assert not found, f"Ask kerastrain._backend for the behaviour instead: {found}"
