"""Parallel trials through KerasTuner's chief/worker mode, with real processes on 127.0.0.1."""

import csv
import os
import socket

import pytest
from _tuning_helpers import cli, tiny_config, tree, write_config, write_npz

from kerastrain import cli as kerastrain_cli
from kerastrain.testing import TestCase, free_port
from kerastrain.tuning import _data, _driver, _parallel


class WorkerEnvironmentTest(TestCase):
    def test_ids_gpu_pinning_and_memory_caps(self):
        envs = [_parallel.worker_environment(i, 3, "127.0.0.1", 8470, gpus=["0", "1"])
                for i in range(3)]
        self.assertEqual([e["KERASTUNER_TUNER_ID"] for e in envs], ["tuner0", "tuner1", "tuner2"])
        self.assertEqual({e["KERASTUNER_ORACLE_IP"] for e in envs}, {"127.0.0.1"})
        self.assertEqual({e["KERASTUNER_ORACLE_PORT"] for e in envs}, {"8470"})
        self.assertEqual([e["CUDA_VISIBLE_DEVICES"] for e in envs], ["0", "1", "0"])
        self.assertEqual({e["XLA_PYTHON_CLIENT_PREALLOCATE"] for e in envs}, {"false"})
        self.assertEqual({e["TF_FORCE_GPU_ALLOW_GROWTH"] for e in envs}, {"true"})
        # Two workers share GPU 0: each may use 0.9 / 2 of it.
        self.assertEqual({e["XLA_PYTHON_CLIENT_MEM_FRACTION"] for e in envs}, {"0.450"})
        fixed = _parallel.worker_environment(0, 3, "h", 1, memory_fraction=0.2, gpus=[])
        self.assertEqual(fixed["XLA_PYTHON_CLIENT_MEM_FRACTION"], "0.200")

    def test_port_in_use_is_refused(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            with pytest.raises(ValueError, match=rf"Argument `chief` must be a free port on a "
                                                 rf"local address. Received: chief='127.0.0.1:"
                                                 rf"{port}'.* Choose another port."):
                _parallel.check_port_free("127.0.0.1", port)


class ChiefAndWorkersTest(TestCase):
    @pytest.mark.slow
    def test_chief_and_two_workers_complete_a_search_together(self):
        directory = self.get_temp_dir()
        config = tiny_config(os.path.join(directory, "out"), write_npz(directory),
                             search={"max_trials": 4, "max_epochs": 2},
                             parallel={"workers": 2, "connect_timeout": 120.0})
        splits = _data.load_splits(config["data"], config["search"]["seed"])
        tuner = _driver.run_chief(config, splits)  # this process is the chief
        with open(os.path.join(tuner.project_dir, "results.csv")) as stream:
            rows = list(csv.DictReader(stream))
        self.assertEqual(sorted(r["trial_id"] for r in rows), ["0", "1", "2", "3"])
        self.assertTrue(all(r["status"] == "COMPLETED" for r in rows), rows)
        self.assertEqual({r["worker"] for r in rows}, {"tuner0", "tuner1"})
        self.assertEqual(len(tuner.oracle.end_order), 4)
        self.assertEqual(tuner.oracle.ongoing_trials, {})


class BadParallelInputTest(TestCase):
    def test_worker_that_cannot_reach_the_chief_times_out_clearly(self):
        directory = self.get_temp_dir()
        config = tiny_config(os.path.join(directory, "out"), write_npz(directory))
        config_path = write_config(os.path.join(directory, "tune.toml"), config)
        port = free_port()
        result = cli("worker", config_path, "--chief", f"127.0.0.1:{port}",
                     "--connect-timeout", "2", timeout=180)
        self.assertEqual(result.returncode, 2, result.stderr[-2000:])
        last = result.stderr.strip().splitlines()[-1]
        self.assertEqual(
            last, f"kerastrain worker: error: could not reach the chief oracle at 127.0.0.1:"
                  f"{port} within 2 s. Start `kerastrain tune --chief HOST:PORT` first, check "
                  "the address and firewall, or raise parallel.connect_timeout.")

    def test_tune_on_a_busy_port_fails_before_touching_the_directory(self):
        directory = self.get_temp_dir()
        out = os.path.join(directory, "out")
        os.makedirs(os.path.join(out, "search"))
        with open(os.path.join(out, "search", "results.csv"), "w") as stream:
            stream.write("trial_id,status,score\n0,COMPLETED,0.5\n")
        before = tree(out)
        config_path = write_config(os.path.join(directory, "tune.toml"),
                                   tiny_config(out, write_npz(directory)))
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            status = kerastrain_cli.main(["tune", config_path, "--chief", f"127.0.0.1:{port}",
                                          "--quiet"])
        self.assertEqual(status, 2)
        self.assertEqual(tree(out), before)

    def test_worker_needs_a_valid_chief_address(self):
        with pytest.raises(SystemExit):
            kerastrain_cli.main(["worker"])  # --chief is required
        self.assertEqual(kerastrain_cli.main(["worker", "--chief", "nowhere"]), 2)
