"""The project's own TestCase (kerastrain does not import keras.src.testing)."""

from __future__ import annotations

import os
import socket
import tempfile
import unittest

import keras
import numpy as np


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reload_model(model, directory=None):
    """Save ``model`` to a ``.keras`` file and load it back *without* custom_objects."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        return keras.saving.load_model(path)


class TestCase(unittest.TestCase):
    """Base class: fixed seeds, and kerastrain's shared assertions."""

    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(1337)
        self.rng = np.random.default_rng(1337)

    def get_temp_dir(self):
        """A temporary directory removed after the test."""
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        return directory.name

    def assertAllClose(self, actual, expected, rtol=1e-6, atol=1e-6, msg=None):
        """`numpy.testing.assert_allclose` on tensors, arrays or nested lists."""
        if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
            self.assertEqual(len(actual), len(expected), msg)
            for a, e in zip(actual, expected):
                self.assertAllClose(a, e, rtol=rtol, atol=atol, msg=msg)
            return
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(actual), np.asarray(expected), rtol=rtol, atol=atol,
            err_msg=msg or "",
        )

    def run_serialization_test(self, instance):
        """Check `from_config(get_config())` and Keras (de)serialization round-trip.

        Returns the revived instance, whose config equals the original's.
        """
        config = instance.get_config()
        revived = type(instance).from_config(config)
        self.assertEqual(revived.get_config(), config)
        serialized = keras.saving.serialize_keras_object(instance)
        deserialized = keras.saving.deserialize_keras_object(serialized)
        self.assertIs(type(deserialized), type(instance))
        self.assertEqual(deserialized.get_config(), config)
        return deserialized

    def run_saved_model_test(self, model, x):
        """Save and reload ``model`` (no custom_objects); predictions must match."""
        expected = keras.ops.convert_to_numpy(model.predict(x, verbose=0))
        revived = reload_model(model, self.get_temp_dir())
        actual = keras.ops.convert_to_numpy(revived.predict(x, verbose=0))
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)
        return revived
