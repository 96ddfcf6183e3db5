"""results.csv: built from KerasTuner's trial files, written atomically, printed best first."""

import csv
import json
import os

import keras_tuner
import pytest
from keras_tuner.src.engine import trial as trial_module

from kerastrain import cli
from kerastrain.testing import TestCase
from kerastrain.tuning import _results, read_results, write_results


def fake_trial(project, trial_id, score, units, status="COMPLETED", std=None):
    """A KerasTuner trial.json as the oracle writes it (Trial.get_state)."""
    hp = keras_tuner.HyperParameters()
    hp.Fixed("units", units)
    trial = trial_module.Trial(hp, trial_id=trial_id, status=status)
    trial.metrics.register("val_accuracy", "max")
    trial.metrics.update("val_accuracy", score)
    trial.metrics.update("epochs", 3.0)
    trial.metrics.update("pruned", 0.0)
    if std is not None:
        trial.metrics.update("score_std", std)
    trial.score = score
    directory = os.path.join(project, f"trial_{trial_id}")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "trial.json"), "w") as stream:
        json.dump(trial.get_state(), stream)


class ResultsTableTest(TestCase):
    def make_project(self, direction="max"):
        project = os.path.join(self.get_temp_dir(), "search")
        os.makedirs(project)
        fake_trial(project, "0", 0.80, 16, std=0.01)
        fake_trial(project, "1", 0.95, 32, std=0.02)
        fake_trial(project, "2", 0.90, 64, std=0.03)
        with open(os.path.join(project, _results.META_FILE), "w") as stream:
            json.dump({"objective": "val_accuracy", "direction": direction}, stream)
        return project

    def test_rows_come_from_the_trial_files(self):
        project = self.make_project()
        path = write_results(project)
        with open(path) as stream:
            rows = list(csv.DictReader(stream))
        self.assertEqual([row["trial_id"] for row in rows], ["0", "1", "2"])
        self.assertEqual([float(row["score"]) for row in rows], [0.80, 0.95, 0.90])
        self.assertEqual([float(row["score_std"]) for row in rows], [0.01, 0.02, 0.03])
        self.assertEqual([int(row["units"]) for row in rows], [16, 32, 64])
        self.assertEqual(list(rows[0])[:len(_results.FIXED_COLUMNS)],
                         list(_results.FIXED_COLUMNS))
        # Counts are integers (fake_trial records epochs=3.0 and pruned=0.0, as floats).
        self.assertEqual({(row["epochs"], row["pruned"]) for row in rows}, {("3", "0")})
        self.assertEqual([f for f in os.listdir(project) if f.startswith(".tmp-")], [])

    def test_read_results_sorts_best_first_for_the_direction(self):
        project = self.make_project()
        rows, meta = read_results(write_results(project))
        self.assertEqual([row["trial_id"] for row in rows], ["1", "2", "0"])
        self.assertEqual(meta["direction"], "max")
        lowest_first = _results.sort_rows(rows, "min")
        self.assertEqual([row["trial_id"] for row in lowest_first], ["0", "2", "1"])

    def test_failed_trials_sort_last(self):
        rows = [{"trial_id": "0", "score": None}, {"trial_id": "1", "score": 0.5}]
        self.assertEqual([r["trial_id"] for r in _results.sort_rows(rows, "max")], ["1", "0"])

    def test_a_failed_write_leaves_the_old_file_intact(self):
        project = self.make_project()
        path = write_results(project)
        with open(path) as stream:
            before = stream.read()
        with pytest.raises(TypeError):
            _results.atomic_write_text(path, object())  # stream.write raises mid-write
        with open(path) as stream:
            self.assertEqual(stream.read(), before)
        self.assertEqual([f for f in os.listdir(project) if f.startswith(".tmp-")], [])

    def test_results_command_prints_the_table_and_best_hyperparameters(self):
        project = self.make_project()
        write_results(project)
        import contextlib
        import io

        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            status = cli.main(["results", os.path.dirname(project)])
        output = buffer.getvalue()
        self.assertEqual(status, 0)
        self.assertIn("best hyperparameters: units=32", output)
        self.assertLess(output.index("0.95"), output.index("0.9 "))
        self.assertLess(output.index("0.9 "), output.index("0.8"))

    def test_results_command_errors(self):
        missing = os.path.join(self.get_temp_dir(), "nothing-here")
        with pytest.raises(FileNotFoundError, match=r"Argument `directory` must be an existing "
                                                    r"directory"):
            _results.find_results(missing)
        empty = self.get_temp_dir()
        with pytest.raises(FileNotFoundError, match=r"Argument `directory` must contain a "
                                                    r"results.csv"):
            _results.find_results(empty)
        with pytest.raises(TypeError, match=r"Argument `directory` must be a path"):
            _results.find_results(3)
        self.assertEqual(cli.main(["results", missing]), 2)


def test_failure_reason_is_the_last_line_without_the_class_path():
    traceback_text = ("Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                      "keras_tuner.src.errors.FailedTrialError: out of memory\n")
    assert _results.failure_reason(traceback_text) == "out of memory"
    assert _results.failure_reason("NonFiniteLossError: training loss became nan at epoch 2") \
        == "training loss became nan at epoch 2"
    assert _results.failure_reason("something odd: x") == "something odd: x"
    assert _results.failure_reason(None) is None


def test_reports_of_running_trials_stay_in_memory_and_ended_trials_are_written_once(
        tmp_path, monkeypatch):
    import keras

    from kerastrain.tuning._tuner import create_tuner

    def build(hp):
        hp.Float("learning_rate", 1e-3, 1e-1)
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    tuner = create_tuner("random", build, max_trials=2, max_epochs=1, directory=str(tmp_path),
                         tensorboard=False, vectorize=False)
    oracle = tuner.oracle
    running = oracle.create_trial("worker_a")
    ending = oracle.create_trial("worker_b")
    writes = []
    real_write = _results.atomic_write_text
    monkeypatch.setattr(_results, "atomic_write_text", lambda path, text: (
        writes.append(os.path.basename(os.path.dirname(path))), real_write(path, text)))
    with oracle.running_reports_in_memory():
        for step in range(3):
            for trial in (running, ending):
                oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5 + step / 10},
                                    step=step)
        assert writes == []  # nothing written inside the block
        ending.status = trial_module.TrialStatus.COMPLETED
    assert writes == [f"trial_{ending.trial_id}"]  # once, the ended trial only
    states = {}
    for trial in (running, ending):
        with open(os.path.join(tuner.project_dir, f"trial_{trial.trial_id}",
                               "trial.json")) as stream:
            states[trial.trial_id] = json.load(stream)
    assert states[running.trial_id]["status"] == "RUNNING"  # as create_trial wrote it
    history = states[ending.trial_id]["metrics"]["metrics"]["val_accuracy"]["observations"]
    assert [o["step"] for o in history] == [0, 1, 2]  # its final state, every report
    oracle.update_trial(running.trial_id, {"val_accuracy": 0.9}, step=3)
    assert writes[-1] == f"trial_{running.trial_id}"  # outside the block: KerasTuner's save
