"""`kerastrain tune` end to end (in-process): the embedded default and a user's own code."""

import contextlib
import csv
import io
import os
import textwrap

from kerastrain import cli
from kerastrain.testing import TestCase


def run(*args):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = cli.main(list(args))
    return status, buffer.getvalue()


class TuneCommandTest(TestCase):
    def test_embedded_default_on_digits_with_a_tiny_budget(self):
        """The no-argument path (digits, chapter MLP space, retrain, test accuracy), shortened."""
        out = os.path.join(self.get_temp_dir(), "out")
        status, output = run("tune", "--quiet", "--directory", out, "--max-trials", "1",
                             "--set", "search.max_epochs=1", "--set", "output.tensorboard=false")
        self.assertEqual(status, 0)
        self.assertIn("trials: 1, best first (val_accuracy, max)", output)
        self.assertIn("best hyperparameters", output)
        self.assertRegex(output, r"test accuracy: 0\.\d{4}")
        with open(os.path.join(out, "search", "results.csv")) as stream:
            rows = list(csv.DictReader(stream))
        self.assertEqual(len(rows), 1)
        self.assertTrue({"learning_rate", "optimizer", "activation", "batch_size"} <= set(rows[0]))

    def test_yaml_config_with_user_data_function_build_fn_and_cv(self):
        directory = self.get_temp_dir()
        with open(os.path.join(directory, "user_search.py"), "w") as stream:
            stream.write(textwrap.dedent('''
                import keras
                import numpy as np

                def data():
                    rng = np.random.default_rng(0)
                    y = np.arange(80) % 2
                    x = rng.normal(size=(80, 4)) + 3.0 * y[:, None]
                    return x.astype("float32"), y

                def build(hp):
                    model = keras.Sequential([
                        keras.Input((4,)),
                        keras.layers.Dense(hp.Choice("units", [4, 8]), activation="relu"),
                        keras.layers.Dense(2, activation="softmax")])
                    model.compile("adam", "sparse_categorical_crossentropy",
                                  metrics=["accuracy"])
                    return model
            '''))
        config = os.path.join(directory, "tune.yaml")
        with open(config, "w") as stream:
            stream.write(textwrap.dedent(f'''
                data:
                  source: "user_search:data"
                model:
                  build: "user_search:build"
                search:
                  max_trials: 1
                  max_epochs: 1
                  cv: 2
                pruning:
                  enabled: false
                output:
                  directory: "{os.path.join(directory, "out")}"
                  tensorboard: false
            '''))
        import sys

        sys.path.insert(0, directory)
        self.addCleanup(sys.path.remove, directory)
        status, output = run("tune", config, "--quiet")
        self.assertEqual(status, 0)
        with open(os.path.join(directory, "out", "search", "results.csv")) as stream:
            row = next(csv.DictReader(stream))
        self.assertEqual(row["status"], "COMPLETED")
        self.assertNotEqual(row["score_std"], "")
        self.assertIn("test accuracy", output)
