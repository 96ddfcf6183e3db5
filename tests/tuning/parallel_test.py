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


class WorkerBoundTest(TestCase):
    def test_workers_are_bounded_by_trials_cores_memory_and_gpus(self):
        gib = 1 << 30
        self.assertEqual(_parallel.bound_workers(2, 8, cpus=4, memory=64 * gib, gpus=[]),
                         (2, None))
        self.assertEqual(_parallel.bound_workers(1000, 1, cpus=16, memory=64 * gib, gpus=[]),
                         (1, "parallel.workers = 1000 capped to 1: search.max_trials = 1"))
        self.assertEqual(_parallel.bound_workers(1000, 500, cpus=2, memory=64 * gib, gpus=[]),
                         (2, "parallel.workers = 1000 capped to 2: 2 CPU cores"))
        self.assertEqual(
            _parallel.bound_workers(1000, 500, cpus=64, memory=3.5 * gib, gpus=[]),
            (3, "parallel.workers = 1000 capped to 3: 3.5 GiB of available memory at ~1 GiB "
                "per worker"))
        self.assertEqual(
            _parallel.bound_workers(16, 500, 0.25, cpus=64, memory=64 * gib, gpus=["0", "1"]),
            (8, "parallel.workers = 16 capped to 8: 2 GPU(s) at parallel.memory_fraction = "
                "0.25"))

    def test_this_machine_is_measured(self):
        self.assertGreaterEqual(_parallel.cpu_count(), 1)
        memory = _parallel.available_memory()
        self.assertTrue(memory is None or memory > 0)
        count, reason = _parallel.bound_workers(1000, 1000)
        self.assertLessEqual(count, _parallel.cpu_count())
        self.assertRegex(reason, r"^parallel.workers = 1000 capped to \d+: ")


def _python(code):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL)


class WorkerDeathTest(TestCase):
    """Real processes that die: killed by a signal, or exiting with an error code."""

    def start(self, code, index):
        process = _python(code)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        process.tuner_id = f"tuner{index}"
        process.log_path = os.path.join(self.get_temp_dir(), f"worker_{index}.log")
        with open(process.log_path, "w") as stream:
            stream.write("starting\nValueError: the last line of this worker's log\n")
        return process

    def test_describe_exit_names_the_worker_the_signal_or_code_and_the_log(self):
        import signal

        killed = self.start("import time; time.sleep(60)", 0)
        killed.send_signal(signal.SIGKILL)
        killed.wait(30)
        self.assertEqual(
            _parallel.describe_exit(killed),
            f"worker tuner0 (pid {killed.pid}) was killed by SIGKILL; its log: "
            f"{killed.log_path} (last line: ValueError: the last line of this worker's log)")
        failed = self.start("raise SystemExit(3)", 1)
        failed.wait(30)
        self.assertRegex(_parallel.describe_exit(failed),
                         rf"^worker tuner1 \(pid {failed.pid}\) exited with code 3; its log: ")

    def test_serve_reports_a_dead_worker_when_it_dies_and_in_the_final_error(self):
        import signal

        from kerastrain.tuning import MLPHyperModel, create_tuner

        tuner = create_tuner("random", MLPHyperModel(input_shape=(6,), num_classes=3),
                             max_trials=2, directory=self.get_temp_dir(), tensorboard=False)
        alive = self.start("import time; time.sleep(3)", 0)
        killed = self.start("import time; time.sleep(60)", 1)
        killed.send_signal(signal.SIGKILL)
        lines = []
        with pytest.raises(_parallel.WorkerFailedError) as caught:
            _parallel.serve(tuner, "127.0.0.1", free_port(), [alive, killed],
                            report=lines.append)
        self.assertEqual(alive.returncode, 0)
        described = _parallel.describe_exit(killed)
        self.assertEqual(lines, [described])  # said once, when it died; not the clean exit
        self.assertEqual(str(caught.value),
                         f"the search is not finished: {described}. Re-run the same command "
                         "to resume (unfinished trials are re-run).")


class ChiefWatchdogTest(TestCase):
    def test_a_lost_chief_ends_the_worker_within_the_timeout(self):
        import threading
        import time

        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        exited = threading.Event()
        codes = []

        def fake_exit(code):
            codes.append(code)
            exited.set()

        watchdog = _parallel.ChiefWatchdog("127.0.0.1", port, timeout=1.0, exit=fake_exit)
        with watchdog:
            time.sleep(0.6)
            self.assertTrue(watchdog.reached)
            server.close()  # the chief dies
            lost = time.monotonic()
            self.assertTrue(exited.wait(10))
            elapsed = time.monotonic() - lost
        self.assertEqual(codes, [2])
        self.assertLess(elapsed, 1.0 + 3.0)  # the timeout plus a margin for a busy machine
        self.assertIn("lost the chief oracle at 127.0.0.1:", watchdog.message())

    def test_a_chief_never_reached_gives_the_connect_message(self):
        watchdog = _parallel.ChiefWatchdog("127.0.0.1", free_port(), timeout=2.0)
        self.assertEqual(
            watchdog.message(),
            f"could not reach the chief oracle at 127.0.0.1:{watchdog.port} within 2 s. Start "
            "`kerastrain tune --chief HOST:PORT` first, check the address and firewall, or "
            "raise parallel.connect_timeout.")


class KilledChiefTest(TestCase):
    @pytest.mark.slow
    def test_a_worker_whose_chief_is_killed_exits_with_one_line(self):
        import json
        import signal
        import subprocess
        import sys
        import time

        directory = self.get_temp_dir()
        out = os.path.join(directory, "out")
        # One long trial (many epochs of tiny data), so the chief dies while it trains.
        config = tiny_config(out, write_npz(directory), search={"max_trials": 1,
                                                                "max_epochs": 5000})
        config_path = write_config(os.path.join(directory, "tune.toml"), config)
        port = free_port()
        command = [sys.executable, "-m", "kerastrain.cli"]
        chief = subprocess.Popen(
            command + ["tune", config_path, "--chief", f"127.0.0.1:{port}", "--workers", "0",
                       "--quiet"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        self.addCleanup(lambda: chief.poll() is None and chief.kill())
        _wait_for_port(port, chief)
        worker = subprocess.Popen(
            command + ["worker", config_path, "--chief", f"127.0.0.1:{port}",
                       "--connect-timeout", "3"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        self.addCleanup(lambda: worker.poll() is None and worker.kill())
        trial_file = os.path.join(out, "search", "trial_0", "trial.json")
        deadline = time.monotonic() + 240
        while not os.path.exists(trial_file) and time.monotonic() < deadline:
            self.assertIsNone(worker.poll(), worker.stderr.read()[-2000:]
                              if worker.poll() is not None else "")
            time.sleep(0.2)
        self.assertTrue(os.path.exists(trial_file), "the worker never started a trial")
        time.sleep(1.0)  # the worker is training
        chief.send_signal(signal.SIGKILL)
        chief.wait(30)
        killed = time.monotonic()
        _, stderr = worker.communicate(timeout=120)
        elapsed = time.monotonic() - killed
        self.assertEqual(worker.returncode, 2, stderr[-3000:])
        self.assertLess(elapsed, 3 + 5)  # connect_timeout plus a small margin
        self.assertNotIn("Traceback", stderr)
        self.assertEqual(stderr.strip().splitlines()[-1],
                         f"kerastrain worker: error: lost the chief oracle at 127.0.0.1:{port} "
                         "(unreachable for 3 s); this worker stops. Its unfinished trial is "
                         "re-run when the chief resumes the search.")
        with open(trial_file) as stream:
            self.assertEqual(json.load(stream)["status"], "RUNNING")  # not counted as failed


def _wait_for_port(port, process, timeout=240):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode()[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listened on port {port} within {timeout} s")
