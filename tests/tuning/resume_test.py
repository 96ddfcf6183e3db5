"""Crash-safe resume: a search killed with SIGKILL continues; nothing lost or counted twice."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
from _tuning_helpers import cli, tiny_config, write_config, write_npz

from kerastrain.testing import TestCase

MAX_TRIALS = 2
KILL_AFTER = 1


def read_rows(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


class ResumeTest(TestCase):
    @pytest.mark.slow
    def test_sigkill_after_k_trials_then_resume(self):
        directory = self.get_temp_dir()
        data = write_npz(directory)
        config = tiny_config(os.path.join(directory, "out"), data,
                             search={"max_trials": MAX_TRIALS, "max_epochs": 2})
        config_path = write_config(os.path.join(directory, "tune.toml"), config)
        results = os.path.join(directory, "out", "search", "results.csv")

        process = subprocess.Popen(
            [sys.executable, "-m", "kerastrain.cli", "tune", config_path, "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        deadline = time.monotonic() + 300
        completed = []
        while time.monotonic() < deadline and process.poll() is None:
            completed = [r for r in read_rows(results) if r["status"] == "COMPLETED"]
            if len(completed) >= KILL_AFTER:
                break
            time.sleep(0.05)
        self.assertIsNone(process.poll(), process.stderr.read().decode()[-2000:]
                          if process.poll() is not None else "")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
        self.assertEqual(process.returncode, -signal.SIGKILL)

        before = {r["trial_id"]: r for r in read_rows(results) if r["status"] == "COMPLETED"}
        self.assertGreaterEqual(len(before), KILL_AFTER)
        self.assertLess(len(before), MAX_TRIALS, "the search ended before it could be killed")

        resumed = cli("tune", config_path, "--quiet", timeout=300)
        self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
        after = read_rows(results)
        ids = [r["trial_id"] for r in after]
        self.assertEqual(sorted(ids), sorted(set(ids)))  # nothing counted twice
        self.assertEqual(len(after), MAX_TRIALS)
        self.assertTrue(all(r["status"] == "COMPLETED" for r in after), after)
        for trial_id, row in before.items():
            # The completed trials' rows (score, epochs, seconds, hyperparameters) are unchanged.
            self.assertEqual(next(r for r in after if r["trial_id"] == trial_id), row)


class CrashWindowTest(TestCase):
    """A kill between writing trial.json and oracle.json (simulated by restoring the older
    oracle.json): the running trial is re-run once, a completed one is not re-run."""

    def make(self, directory, max_trials):
        from _tuning_helpers import blobs

        from kerastrain.tuning import MLPHyperModel, create_tuner

        hypermodel = MLPHyperModel(input_shape=(6,), num_classes=3, layers=[1, 1], units=[4, 8],
                                   activations=["relu"], initializers=["glorot_uniform"],
                                   optimizers=["adam"], learning_rate=[0.01, 0.05],
                                   schedules=["constant"], l2=[0, 0], dropout=[0.0, 0.0],
                                   batch_norm=[False], batch_sizes=[32])
        tuner = create_tuner("random", hypermodel, max_trials=max_trials, max_epochs=1,
                             directory=directory, tensorboard=False)
        x, y = blobs(60)
        return tuner, (x[:40], y[:40]), (x[40:], y[40:])

    def test_running_trial_newer_than_the_oracle_is_rerun(self):
        from kerastrain.tuning import search

        directory = self.get_temp_dir()
        tuner, train, validation = self.make(directory, 1)
        search(tuner, *train, validation_data=validation)
        oracle_file = os.path.join(tuner.project_dir, "oracle.json")
        with open(oracle_file) as stream:
            older_oracle = stream.read()
        resumed, train, validation = self.make(directory, 2)
        trial = resumed.oracle.create_trial("tuner0")  # trial.json + oracle.json written
        self.assertEqual(trial.trial_id, "1")
        with open(oracle_file, "w") as stream:
            stream.write(older_oracle)  # the kill came before oracle.json was saved

        again, train, validation = self.make(directory, 2)
        search(again, *train, validation_data=validation)
        rows = read_rows(os.path.join(again.project_dir, "results.csv"))
        self.assertEqual([(r["trial_id"], r["status"]) for r in rows],
                         [("0", "COMPLETED"), ("1", "COMPLETED")])

    def test_completed_trial_still_listed_as_running_is_not_rerun(self):
        import json

        from kerastrain.tuning import search

        directory = self.get_temp_dir()
        tuner, train, validation = self.make(directory, 1)
        search(tuner, *train, validation_data=validation)
        before = read_rows(os.path.join(tuner.project_dir, "results.csv"))
        oracle_file = os.path.join(tuner.project_dir, "oracle.json")
        with open(oracle_file) as stream:
            state = json.load(stream)
        state["ongoing_trials"] = {"tuner0": "0"}  # killed inside end_trial, before its save
        state["end_order"] = []
        with open(oracle_file, "w") as stream:
            json.dump(state, stream)

        again, train, validation = self.make(directory, 1)
        again.progress = _Recorder()
        search(again, *train, validation_data=validation)
        self.assertEqual(again.progress.started, [])  # trial 0 was not trained again
        self.assertEqual(read_rows(os.path.join(again.project_dir, "results.csv")), before)
        self.assertEqual(again.oracle.end_order, ["0"])


class _Recorder:
    """A progress object that records which trials started training."""

    def __init__(self):
        self.started = []

    def start_trial(self, trial_id, total):
        self.started.append(trial_id)

    def advance(self, objective, value):
        pass

    def end_trial(self, trial_id, score, pruned):
        pass
