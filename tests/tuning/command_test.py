"""`kerastrain tune` end to end (in-process): the embedded default and a user's own code."""

import contextlib
import csv
import io
import os
import textwrap

import pytest

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


def run_both(*args):
    """``(status, stdout, stderr)`` of `kerastrain ARGS` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(list(args))
    return status, out.getvalue(), err.getvalue()


def read_csv(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


class TuneFaultsTest(TestCase):
    """Careless inputs to `kerastrain tune`, each given for real."""

    def config(self, **sections):
        from _tuning_helpers import tiny_config, write_config, write_npz

        directory = self.get_temp_dir()
        out = os.path.join(directory, "out")
        config = tiny_config(out, write_npz(directory), **sections)
        return write_config(os.path.join(directory, "tune.toml"), config), out

    def test_a_thousand_workers_for_one_trial_are_capped_before_anything_starts(self):
        import time

        path, out = self.config(search={"max_trials": 1, "max_epochs": 1})
        started = time.monotonic()
        status, output, errors = run_both("tune", path, "--workers", "1000", "--quiet")
        elapsed = time.monotonic() - started
        self.assertEqual(status, 0, errors)
        self.assertEqual(
            [line for line in errors.splitlines() if line.startswith("kerastrain")],
            ["kerastrain tune: parallel.workers = 1000 capped to 1: search.max_trials = 1 "
             "(the trial runs in this process)"])
        self.assertFalse(os.path.exists(os.path.join(out, "search", "logs")))  # no worker
        rows = read_csv(os.path.join(out, "search", "results.csv"))
        self.assertEqual([(r["trial_id"], r["status"]) for r in rows], [("0", "COMPLETED")])
        self.assertLess(elapsed, 120)  # one 1-epoch trial on tiny data, no process start

    def test_output_directory_that_is_a_file_is_one_line(self):
        path, out = self.config()
        with open(out, "w") as stream:
            stream.write("not a directory")
        status, output, errors = run_both("tune", path, "--quiet")
        self.assertEqual(status, 2)
        self.assertEqual(errors.strip().splitlines(), [
            f"kerastrain tune: error: Argument `output.directory` must be a directory (or a "
            f"path to create). Received: output.directory={out!r}, but {out!r} is an existing "
            "file. Choose another --directory."])
        with open(out) as stream:
            self.assertEqual(stream.read(), "not a directory")

    def test_build_function_in_the_current_directory_is_importable(self):
        import sys

        path, out = self.config(search={"max_trials": 1, "max_epochs": 1})
        work = self.get_temp_dir()
        with open(os.path.join(work, "my_hp_cwd.py"), "w") as stream:
            stream.write(textwrap.dedent('''
                import keras

                def build(hp):
                    model = keras.Sequential([
                        keras.Input((6,)),
                        keras.layers.Dense(hp.Choice("width", [4, 8]), activation="relu"),
                        keras.layers.Dense(3, activation="softmax")])
                    model.compile("adam", "sparse_categorical_crossentropy",
                                  metrics=["accuracy"])
                    return model
            '''))
        saved_path, saved_cwd = list(sys.path), os.getcwd()
        self.addCleanup(lambda: sys.path.__setitem__(slice(None), saved_path))
        self.addCleanup(os.chdir, saved_cwd)
        self.addCleanup(sys.modules.pop, "my_hp_cwd", None)
        sys.path[:] = [p for p in sys.path if p not in ("", work)]  # as a console script
        os.chdir(work)
        status, output, errors = run_both("tune", path, "--quiet", "--set",
                                          "model.build=my_hp_cwd:build")
        self.assertEqual(status, 0, errors)
        rows = read_csv(os.path.join(out, "search", "results.csv"))
        self.assertIn(rows[0]["width"], ("4", "8"))

    @pytest.mark.slow
    def test_results_table_fits_80_columns_and_says_where_things_are(self):
        import re

        path, out = self.config(model={"layers": [1, 2]},
                                search={"max_trials": 3, "max_epochs": 1},
                                output={"tensorboard": True, "retrain": True})
        from unittest import mock

        with mock.patch.dict(os.environ, {"COLUMNS": "80"}):  # a log: stdout is not a tty
            status, output, errors = run_both("tune", path, "--quiet")
        self.assertEqual(status, 0, errors)
        lines = output.splitlines()
        table = lines[:lines.index(next(x for x in lines if x.startswith("best hyper")))]
        self.assertLessEqual(max(len(line) for line in table), 80, output)
        project = os.path.join(out, "search")
        rows = read_csv(os.path.join(project, "results.csv"))
        for row in rows:
            # One unbroken line per trial; units_1 only where two layers are used.
            self.assertTrue(any(re.match(rf"{row['trial_id']}\s+COMPLETED\s", line)
                                for line in table), output)
            self.assertEqual(row["units_1"] == "", row["layers"] == "1", row)
            self.assertRegex(row["epochs"], r"^\d+$")
            self.assertIn(row["pruned"], ("0", "1"))
        # Seed 1337 samples both depths in these 3 trials, so both cases are checked.
        self.assertEqual({row["layers"] for row in rows}, {"1", "2"})
        self.assertEqual(lines[-3:], [
            f"results: {os.path.join(project, 'results.csv')}",
            f"best model: {os.path.join(project, 'best_model.keras')}",
            f"tensorboard: tensorboard --logdir {os.path.join(project, 'tensorboard')}"])
        self.assertTrue(os.path.isfile(os.path.join(project, "best_model.keras")))


class ProgressTest(TestCase):
    def test_pruned_and_failed_trial_bars_stay_where_the_trial_stopped(self):
        from rich.console import Console

        from kerastrain.tuning._command import _Progress

        progress = _Progress(Console(file=io.StringIO(), width=80), max_trials=3)
        for trial_id, score, pruned, reason in (("0", 0.9, False, None),
                                                ("1", 0.5, True, None),
                                                ("2", None, False, "training loss became nan")):
            progress.start_trial(trial_id, 12)
            for _ in range(3):
                progress.advance("val_accuracy", 0.5)
            progress.end_trial(trial_id, score, pruned, reason=reason)
        tasks = progress.bar.tasks
        self.assertEqual([(t.completed, t.total) for t in tasks[1:]], [(12, 12), (3, 12),
                                                                       (3, 12)])
        self.assertEqual([t.description for t in tasks[1:]],
                         ["trial 0 score=0.9000", "trial 1 score=0.5000 (pruned)",
                          "trial 2 failed: training loss became nan"])
        self.assertEqual(tasks[0].completed, 3)


class ResultsLinesTest(TestCase):
    def test_rows_fit_the_width_unbroken_with_reasons_and_only_set_values(self):
        from kerastrain.tuning._command import results_lines

        long = {f"hyperparameter_number_{i}": 0.000123456 * i for i in range(8)}
        rows = [
            {"trial_id": "12", "status": "COMPLETED", "score": 0.987654, "score_std": 0.0123,
             "epochs": 3, "pruned": 1, "seconds": 12.345, "worker": "tuner0", "reason": None,
             "layers": 1, "units_0": 64, "units_1": None, **long},
            {"trial_id": "3", "status": "FAILED", "score": None, "score_std": None,
             "epochs": None, "pruned": None, "seconds": None, "worker": "tuner1",
             "reason": "training loss became nan at epoch 2", "layers": 2, "units_0": 8,
             "units_1": 16},
        ]
        lines = results_lines(rows, "trials: 2, best first (val_accuracy, max): " + "d/" * 40,
                              width=80)
        self.assertLessEqual(max(len(line) for line in lines), 80)
        text = "\n".join(lines)
        self.assertRegex(text, r"\n12\s+COMPLETED\s+0\.9877\s+0\.0123\s+3 pruned\s+12\.3\s+"
                               r"tuner0\n")
        self.assertRegex(text, r"\n3\s+FAILED\s+tuner1\n    reason: training loss became nan "
                               r"at epoch 2\n    layers=2, units_0=8, units_1=16$")
        first = text[text.index("\n12 "):text.index("\n3 ")]
        self.assertNotIn("units_1", first)  # inactive (None) in a 1-layer trial
        for name in long:
            self.assertIn(name + "=", first)  # wrapped between values, never inside a name
