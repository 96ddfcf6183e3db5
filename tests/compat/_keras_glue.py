"""Import glue for the ported Keras optimizer tests (no `keras.src` imports).

Keras's tests import `keras.src.backend`, `keras.src.testing` and
`keras.src.optimizers`; the ports import the names below instead, so every
test body, assertion and golden number stays as Keras wrote it.

- `KerasTestCase`: kerastrain's `TestCase` plus the `keras.src.testing.TestCase`
  assertions the optimizer tests use, with Keras's semantics
  (`assertAlmostEqual(decimal=3)`, `run_class_serialization_test` comparing
  the JSON config and `dir()` of the revived instance, `clear_session` in setUp).
- `backend`: the public equivalents of the `keras.src.backend` names used.
- `optimizers`: kerastrain's presets under Keras's names; `get` resolves a
  Keras identifier ("sgd", {"class_name": "adam", ...}) to the kerastrain
  preset of that name through Keras's own `keras.optimizers.get`.
- `parameters`: absl's `parameterized.parameters`, as subtests.
"""

from __future__ import annotations

import functools
import json
import types

import keras
import numpy as np

from kerastrain import optimizers as _kerastrain_optimizers
from kerastrain.testing import TestCase

backend = types.SimpleNamespace(
    Variable=keras.Variable,
    convert_to_tensor=keras.ops.convert_to_tensor,
    backend=keras.backend.backend,
    floatx=keras.config.floatx,
    numpy=keras.ops,
)

# Keras identifiers of the presets -> the kerastrain registered names.
_PRESET_NAMES = {
    name.lower(): f"kerastrain>{name}"
    for name in ("SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "RMSprop", "Nadam")
}


def _get(identifier):
    if isinstance(identifier, str):
        identifier = _PRESET_NAMES.get(identifier.lower(), identifier)
    elif isinstance(identifier, dict):
        name = identifier.get("class_name", "")
        identifier = dict(identifier, class_name=_PRESET_NAMES.get(name.lower(), name))
    return keras.optimizers.get(identifier)


optimizers = types.SimpleNamespace(
    SGD=_kerastrain_optimizers.SGD,
    Adam=_kerastrain_optimizers.Adam,
    AdamW=_kerastrain_optimizers.AdamW,
    Adagrad=_kerastrain_optimizers.Adagrad,
    Adadelta=_kerastrain_optimizers.Adadelta,
    RMSprop=_kerastrain_optimizers.RMSprop,
    Nadam=_kerastrain_optimizers.Nadam,
    get=_get,
    serialize=keras.optimizers.serialize,
    deserialize=keras.optimizers.deserialize,
    schedules=keras.optimizers.schedules,
)


def parameters(*cases):
    """absl's ``@parameterized.parameters``: run the test once per case (subtests).

    As absl's, takes the cases as arguments or as one list of tuples.
    """
    if len(cases) == 1 and isinstance(cases[0], list):
        cases = cases[0]

    def decorate(test):
        @functools.wraps(test)
        def run_all(self):
            for case in cases:
                with self.subTest(case=case):
                    test(self, *case)

        return run_all

    return decorate


def _to_json_with_tuples(value):
    def encode(obj):
        if isinstance(obj, tuple):
            return {"__class__": "tuple", "__value__": list(obj)}
        if isinstance(obj, list):
            return [encode(e) for e in obj]
        if isinstance(obj, dict):
            return {key: encode(v) for key, v in obj.items()}
        return obj

    return json.dumps(encode(value), sort_keys=True, indent=4)


def _from_json_with_tuples(value):
    def decode(obj):
        if isinstance(obj, dict) and "__class__" in obj and "__value__" in obj:
            return tuple(obj["__value__"])
        return obj

    return json.loads(value, object_hook=decode)


class KerasTestCase(TestCase):
    """`keras.src.testing.TestCase`'s assertions used by the optimizer tests."""

    def setUp(self):
        keras.backend.clear_session(free_memory=False)
        super().setUp()

    @staticmethod
    def convert_to_numpy(x):
        if isinstance(x, np.ndarray):
            return x
        if keras.ops.is_tensor(x) or isinstance(x, keras.Variable):
            return keras.ops.convert_to_numpy(x)
        return np.array(x)

    def assertAllClose(self, actual, desired, atol=1e-6, rtol=1e-6, msg=None):
        np.testing.assert_allclose(self.convert_to_numpy(actual), self.convert_to_numpy(desired),
                                   atol=atol, rtol=rtol, err_msg=msg or "")

    def assertNotAllClose(self, x1, x2, atol=1e-6, rtol=1e-6, msg=None):
        try:
            self.assertAllClose(x1, x2, atol=atol, rtol=rtol)
        except AssertionError:
            return
        raise AssertionError(f"The two values are close at all elements. \n{msg or ''}.\n"
                             f"Values: {x1}")

    def assertAlmostEqual(self, actual, desired, decimal=3, msg=None):
        np.testing.assert_almost_equal(self.convert_to_numpy(actual),
                                       self.convert_to_numpy(desired), decimal=decimal,
                                       err_msg=msg or "")

    def assertLen(self, iterable, expected_len, msg=None):
        self.assertEqual(len(iterable), expected_len, msg=msg)

    def run_class_serialization_test(self, instance, custom_objects=None):
        cls = instance.__class__
        config = instance.get_config()
        config_json = _to_json_with_tuples(config)
        ref_dir = dir(instance)[:]
        with keras.saving.custom_object_scope(custom_objects or {}):
            revived_instance = cls.from_config(config)
        self.assertEqual(config_json, _to_json_with_tuples(revived_instance.get_config()))
        self.assertEqual(set(ref_dir), set(dir(revived_instance)))

        serialized_json = _to_json_with_tuples(keras.saving.serialize_keras_object(instance))
        with keras.saving.custom_object_scope(custom_objects or {}):
            revived_instance = keras.saving.deserialize_keras_object(
                _from_json_with_tuples(serialized_json))
        self.assertEqual(config_json, _to_json_with_tuples(revived_instance.get_config()))
        new_dir = dir(revived_instance)[:]
        for names in (ref_dir, new_dir):
            if "__annotations__" in names:
                names.remove("__annotations__")
        self.assertEqual(set(ref_dir), set(new_dir))
        return revived_instance
