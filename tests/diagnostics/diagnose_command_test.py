import contextlib
import io
import os
import sys
import textwrap

import numpy as np

from kerastrain import cli
from kerastrain.diagnostics import _command
from kerastrain.testing import TestCase

MODULE = '''
import keras
import numpy as np

def build():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model

def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 3)).astype("float32"), rng.integers(0, 2, size=40)

def not_a_pair():
    return 3
'''


class CommandTest(TestCase):
    def setUp(self):
        super().setUp()
        self.directory = self.get_temp_dir()
        with open(os.path.join(self.directory, "diag_cli_models.py"), "w") as handle:
            handle.write(textwrap.dedent(MODULE))
        sys.path.insert(0, self.directory)
        self.addCleanup(sys.path.remove, self.directory)

    def main(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main(list(argv))
        return status, out.getvalue(), err.getvalue()

    def test_lr_find_default_digits_writes_png(self):
        path = os.path.join(self.directory, "lr.png")
        status, out, _ = self.main("lr-find", "--num-steps", "12", "--output", path)
        self.assertEqual(status, 0)
        self.assertIn("learning-rate range test: 12 steps", out)
        self.assertIn("valley", out)
        with open(path, "rb") as handle:
            self.assertEqual(handle.read(8), b"\x89PNG\r\n\x1a\n")

    def test_diagnose_custom_model_and_data(self):
        x, y = _command.load_data("diag_cli_models:data")
        npz = os.path.join(self.directory, "data.npz")
        np.savez(npz, x=x, y=y)
        csv = os.path.join(self.directory, "data.csv")
        np.savetxt(csv, np.c_[x, y], delimiter=",", header="a,b,c,label")
        for data in ("diag_cli_models:data", npz, csv):
            loaded_x, loaded_y = _command.load_data(data)
            self.assertAllClose(loaded_x, x)
            np.testing.assert_array_equal(loaded_y, y)
            self.assertEqual(loaded_y.dtype.kind, "i")
        output = os.path.join(self.directory, "plots")
        status, out, err = self.main(
            "diagnose", "--model", "diag_cli_models:build", "--data", npz,
            "--checks", "gradient,hessian,eigenvalues,trace,density", "--samples", "16",
            "--epochs", "1",
            "--output", output,
        )
        self.assertEqual(status, 0, err)
        self.assertIn("gradient check (float64", out)
        self.assertIn("critical point:", out)
        self.assertIn("trained 1 epochs", out)
        self.assertIn("Hessian largest eigenvalues", out)
        self.assertIn("Hessian trace", out)
        self.assertIn("Hessian spectral density", out)
        self.assertEqual(sorted(os.listdir(output)), [
            "diagnose-density.png", "diagnose-eigenvalues.png", "diagnose-gradient.png",
            "diagnose-hessian.png", "diagnose-trace.png"])

    def test_default_data_is_digits(self):
        x, y = _command.load_data(None)
        self.assertEqual(x.shape, (1797, 64))
        self.assertEqual(sorted(set(y.tolist())), list(range(10)))

    def test_bad_input(self):
        status, _, err = self.main("diagnose", "--model", "no_colon")
        self.assertEqual(status, 2)
        self.assertIn("Argument `--model` must be 'module:function'. Received: "
                      "--model='no_colon'", err)
        status, _, err = self.main("diagnose", "--checks", "gradient,bogus")
        self.assertEqual(status, 2)
        self.assertIn("Argument `--checks` must be one of 'gradient', 'sanity', 'hessian', "
                      "'eigenvalues', 'trace', 'density', 'landscape', 'landscape2d', "
                      "'sharpness'. Received: --checks='bogus'", err)
        status, _, err = self.main("lr-find", "--data", "diag_cli_models:not_a_pair")
        self.assertEqual(status, 2)
        self.assertIn("Argument `--data` must return a tuple (x, y)", err)
        status, _, err = self.main("lr-find", "--data", "diag_cli_models:missing")
        self.assertEqual(status, 2)
        self.assertIn("Argument `--data` must name a function of module 'diag_cli_models'",
                      err)
        status, _, err = self.main("lr-find", "--data", os.path.join(self.directory, "no.npz"))
        self.assertEqual(status, 2)
        self.assertIn("no such file", err)
        bad = os.path.join(self.directory, "bad.npz")
        np.savez(bad, inputs=np.zeros(3))
        status, _, err = self.main("lr-find", "--data", bad)
        self.assertIn("must be an .npz file with arrays 'x' and 'y'", err)
        one = os.path.join(self.directory, "one.csv")
        np.savetxt(one, np.zeros((3, 1)), delimiter=",")
        status, _, err = self.main("lr-find", "--data", one)
        self.assertIn("must be a CSV with feature columns and a last label column", err)
        status, _, err = self.main("diagnose", "--samples", "0")
        self.assertIn("Argument `--samples` must be an integer >= 1", err)
        status, _, err = self.main("diagnose", "--epochs", "-1")
        self.assertIn("Argument `--epochs` must be an integer >= 0", err)
