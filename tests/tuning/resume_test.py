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
