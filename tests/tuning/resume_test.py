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


def run_in_process(*args):
    import contextlib
    import io

    from kerastrain import cli as kerastrain_cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = kerastrain_cli.main(list(args))
    return status, out.getvalue(), [line for line in err.getvalue().splitlines()
                                    if line.startswith("kerastrain")]


class ResumeFaultsTest(TestCase):
    """Resuming a finished 1-trial search after a changed config or a damaged state file."""

    def setUp(self):
        super().setUp()
        from _tuning_helpers import tree

        self.tree = tree
        directory = self.get_temp_dir()
        self.out = os.path.join(directory, "out")
        self.project = os.path.join(self.out, "search")
        config = tiny_config(self.out, write_npz(directory),
                             search={"max_trials": 1, "max_epochs": 1})
        self.path = write_config(os.path.join(directory, "tune.toml"), config)
        status, _, lines = run_in_process("tune", self.path, "--quiet")
        self.assertEqual(status, 0, lines)

    @pytest.mark.slow
    def test_changed_search_space_is_refused_and_safe_changes_are_applied(self):
        before = self.tree(self.out)
        status, _, lines = run_in_process("tune", self.path, "--quiet",
                                          "--set", "model.units=[32]")
        self.assertEqual(status, 2)
        self.assertEqual(lines, [
            f"kerastrain tune: error: Cannot resume the search in {self.project!r} with a "
            "different config: model.units [8, 16] -> [32]. Resume with the config it was "
            "started with, pass --overwrite to start afresh, or choose a new --directory."])
        self.assertEqual(self.tree(self.out), before)  # nothing written

        first = read_rows(os.path.join(self.project, "results.csv"))
        status, _, lines = run_in_process("tune", self.path, "--quiet", "--max-trials", "2",
                                          "--set", "search.time_limit=600")
        self.assertEqual(status, 0, lines)
        self.assertEqual(lines, [
            f"kerastrain tune: resuming {self.project!r} with search.max_trials 1 -> 2 "
            "(applied)",
            f"kerastrain tune: resuming {self.project!r} with search.time_limit 0.0 -> 600.0 "
            "(applied)"])
        after = read_rows(os.path.join(self.project, "results.csv"))
        self.assertEqual([r["trial_id"] for r in after], ["0", "1"])
        self.assertEqual(after[0], first[0])  # the completed trial is kept as it was

    @pytest.mark.slow
    def test_truncated_trial_or_oracle_file_is_named_and_nothing_is_changed(self):
        for name in (os.path.join("trial_0", "trial.json"), "oracle.json"):
            damaged = os.path.join(self.project, name)
            with open(damaged) as stream:
                intact = stream.read()
            with open(damaged, "w") as stream:
                stream.write(intact[:len(intact) // 2])  # a power cut mid-write
            before = self.tree(self.out)
            status, _, lines = run_in_process("tune", self.path, "--quiet")
            self.assertEqual(status, 2, name)
            self.assertEqual(len(lines), 1, lines)
            self.assertRegex(lines[0], rf"^kerastrain tune: error: Cannot resume: the search "
                                       rf"state file '{damaged}' is damaged \(truncated or not "
                                       r"JSON: .*\)\. Restore it from a backup, or start afresh "
                                       r"with --overwrite or a new --directory; nothing in the "
                                       r"search was changed\.$")
            self.assertEqual(self.tree(self.out), before)  # completed trials untouched
            with open(damaged, "w") as stream:
                stream.write(intact)
