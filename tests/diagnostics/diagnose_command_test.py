import contextlib
import io
import os
import sys
import textwrap
from unittest import mock

import numpy as np
import pytest

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

def separable():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")

def overconfident():
    # initial loss far above ln 2 (the sanity check flags it), yet it overfits quickly
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        2, activation="softmax",
        kernel_initializer=keras.initializers.RandomNormal(stddev=20.0, seed=0))])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="sparse_categorical_crossentropy")
    return model
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

    def test_missing_module_is_one_line(self):
        for command in ("diagnose", "lr-find"):
            status, _, err = self.main(command, "--model", "nosuch_module_kt:build")
            self.assertEqual(status, 2)
            self.assertEqual(err, (
                f"kerastrain {command}: error: Argument `--model` must name an importable "
                "module. Received: --model='nosuch_module_kt:build' No module named "
                "'nosuch_module_kt' in the current directory or on PYTHONPATH; a saved model "
                "is given as a path ending in .keras.\n"))

    def test_saved_model_file(self):
        import keras

        x, y = _command.load_data("diag_cli_models:data")
        npz = os.path.join(self.directory, "data.npz")
        np.savez(npz, x=x, y=y)
        path = os.path.join(self.directory, "model.keras")
        model = _command.load_model("diag_cli_models:build")
        model.save(path)
        status, out, err = self.main("diagnose", "--model", path, "--data", npz,
                                     "--checks", "gradient", "--samples", "8")
        self.assertEqual(status, 0, err)
        self.assertIn("gradient check (float64", out)
        uncompiled = os.path.join(self.directory, "uncompiled.keras")
        keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(uncompiled)
        status, _, err = self.main("diagnose", "--model", uncompiled, "--data", npz)
        self.assertEqual(status, 2)
        self.assertIn(f"Argument `--model` must be a compiled model (saved after "
                      f"model.compile(...)). Received: --model={uncompiled!r}", err)
        damaged = os.path.join(self.directory, "damaged.keras")
        with open(damaged, "w") as handle:
            handle.write("not a zip file")
        status, _, err = self.main("lr-find", "--model", damaged, "--data", npz)
        self.assertEqual(status, 2)
        self.assertIn(f"Argument `--model` must be a model file Keras can load. Received: "
                      f"--model={damaged!r} {damaged}: ", err)
        self.assertEqual(err.count("\n"), 1)

    def test_data_file_errors_name_the_file(self):
        junk = os.path.join(self.directory, "junk.npz")
        with open(junk, "w") as handle:
            handle.write("junk")
        objects = os.path.join(self.directory, "objects.npz")
        np.savez(objects, x=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
        text = os.path.join(self.directory, "junk.csv")
        with open(text, "w") as handle:
            handle.write("a,b,label\n1,2,0\n3,x,1\n")
        for path, message in [
            (junk, f"{junk} contains pickled (object) data, which is never loaded"),
            (objects, f"{objects} contains pickled (object) data, which is never loaded"),
            (text, f"{text}: could not convert string 'x' to float64"),
        ]:
            status, _, err = self.main("diagnose", "--data", path)
            self.assertEqual(status, 2, err)
            self.assertIn(f"Received: --data={path!r}", err)
            self.assertIn(message, err)
            self.assertEqual(err.count("\n"), 1)

    def test_output_is_checked_before_the_run(self):
        a_file = os.path.join(self.directory, "a_file")
        open(a_file, "w").close()
        never = mock.patch.object(_command, "prepare", side_effect=AssertionError("ran"))
        with never:
            status, _, err = self.main("diagnose", "--output", a_file)
            self.assertEqual(status, 2)
            self.assertIn(f"Argument `--output` must be a directory. Received: "
                          f"--output={a_file!r} A file of that name exists.", err)
            status, _, err = self.main("lr-find", "--output", os.path.join(a_file, "lr.png"))
            self.assertEqual(status, 2)
            self.assertIn("Argument `--output`: no such directory: ", err)
            status, _, err = self.main("lr-find", "--output", "lr.txt")
            self.assertEqual(status, 2)
            self.assertIn("Argument `--output` must end in an image format. Received: "
                          "--output='lr.txt' Supported: ", err)

    def test_a_failed_check_exits_1(self):
        status, out, err = self.main("diagnose", "--model", "diag_cli_models:overconfident",
                                     "--data", "diag_cli_models:separable", "--checks", "sanity")
        self.assertIn("sanity check: PROBLEMS FOUND", out)
        self.assertIn("UNEXPECTED", out)
        self.assertEqual(err, "kerastrain diagnose: failed: sanity\n")
        self.assertEqual(status, 1)

    def test_help_lists_the_checks_and_exit_status(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), self.assertRaises(SystemExit):
            cli.main(["diagnose", "--help"])
        text = out.getvalue()
        for check in _command.CHECKS:
            self.assertIn(f"\n  {check} ", text)
        self.assertIn("hessian      critical_point: minimum / maximum / saddle", text)
        self.assertIn("exit status: 0 every check passed, 1 a check failed", text)

    @pytest.mark.slow
    def test_default_sanity_check_passes(self):
        # The built-in model and data must pass their own sanity check (exit 0).
        status, out, err = self.main("diagnose", "--checks", "sanity")
        self.assertIn("sanity check: passed", out)
        self.assertEqual(status, 0, out + err)


SAVE_MODEL = """
import keras, numpy as np, kerastrain
rng = np.random.default_rng(0)
x = rng.normal(size=(40, 3)).astype("float32")
np.savez("data.npz", x=x, y=(x[:, 0] > 0).astype("int64"))
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer=kerastrain.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
model.fit(x[:8], (x[:8, 0] > 0).astype("int64"), epochs=1, verbose=0)  # builds the optimizer
model.save("model.keras")
"""


@pytest.mark.slow
def test_console_script_diagnoses_a_saved_model_quietly(tmp_path):
    # The console script imports kerastrain's subpackages lazily: loading a saved model
    # with a kerastrain optimizer must still find the registered class; and the float64
    # analysis must not print TensorFlow's "Not handling type DT_DOUBLE" (or any) noise.
    import subprocess

    subprocess.run([sys.executable, "-c", SAVE_MODEL], cwd=tmp_path, check=True, timeout=300,
                   capture_output=True)
    script = os.path.join(os.path.dirname(sys.executable), "kerastrain")
    result = subprocess.run(
        [script, "diagnose", "--model", "model.keras", "--data", "data.npz",
         "--checks", "gradient,hessian", "--samples", "16"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gradient check (float64" in result.stdout
    assert "critical point: " in result.stdout
    assert result.stderr == ""
