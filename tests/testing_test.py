"""The project's TestCase helpers fail when they should."""

import keras
import numpy as np

from kerastrain.testing import TestCase, free_port, reload_model


class Helpers(TestCase):
    def test_assert_all_close_fails_on_difference(self):
        self.assertAllClose([1.0, 2.0], [1.0, 2.0])
        with self.assertRaises(AssertionError):
            self.assertAllClose([1.0, 2.0], [1.0, 2.1])

    def test_serialization_round_trip(self):
        revived = self.run_serialization_test(keras.optimizers.Adam(learning_rate=0.25))
        self.assertEqual(revived.get_config()["learning_rate"], 0.25)

    def test_saved_model_round_trip(self):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        x = np.ones((4, 3), "float32")
        revived = self.run_saved_model_test(model, x)
        self.assertIsNot(revived, model)
        self.assertIsInstance(reload_model(model), keras.Model)

    def test_free_port_is_bindable(self):
        import socket

        port = free_port()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
