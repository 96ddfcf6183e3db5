"""Parallel trials through KerasTuner's own chief/worker mode (gRPC).

The chief process owns the oracle and serves it with KerasTuner's
`OracleServicer`; each worker is a process whose tuner talks to the chief
through KerasTuner's `OracleClient`, selected by the environment variables
``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT``. kerastrain adds what KerasTuner leaves out: a port
check, a serve loop that ends as soon as the search is done (KerasTuner's
polls every 20 s), worker processes with capped GPU memory pinned to GPUs
round-robin, and a worker that fails after ``connect_timeout`` seconds with a
clear message when the chief cannot be reached (KerasTuner waits an hour).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from kerastrain import _compat, _validation


class ChiefUnreachableError(RuntimeError):
    """A worker could not reach the chief oracle in time."""


class WorkerFailedError(RuntimeError):
    """All workers exited before the search was finished."""


def check_port_free(host, port):
    """Raise ValueError when ``host:port`` cannot be bound (in use or not local)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as error:
            raise _validation.argument_error(
                "chief", "be a free port on a local address", f"{host}:{port}",
                f"Binding failed ({error.strerror or error}); the port is probably in use. "
                "Choose another port.") from None


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# A worker process imports Keras and its backend and holds one small model: a TensorFlow
# worker measured 0.8 GB peak RSS on a tiny model (JAX 0.4 GB) on the 2-core test machine,
# so 1 GiB each is budgeted.
WORKER_MEMORY_BYTES = 1 << 30


def cpu_count():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def available_memory():
    """Bytes of memory available for new processes (None if unknown)."""
    try:
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def bound_workers(workers, max_trials, memory_fraction=0.0, cpus=None, memory=None,
                  gpus=None):
    """``(count, reason)``: local workers worth starting, and why fewer than asked.

    More workers than trials would idle; more than CPU cores, than the available
    memory holds (`WORKER_MEMORY_BYTES` each), or, with
    ``parallel.memory_fraction``, than the GPUs hold at that fraction, would slow
    every trial down or run the machine out of memory. ``reason`` is None when
    ``workers`` fits.
    """
    cpus = cpu_count() if cpus is None else cpus
    memory = available_memory() if memory is None else memory
    gpus = gpu_ids() if gpus is None else gpus
    limits = [(max_trials, f"search.max_trials = {max_trials}"),
              (cpus, f"{cpus} CPU core{'s' if cpus != 1 else ''}")]
    if memory is not None:
        limits.append((max(1, int(memory // WORKER_MEMORY_BYTES)),
                       f"{memory / (1 << 30):.1f} GiB of available memory at ~1 GiB per "
                       "worker"))
    if gpus and memory_fraction:
        per_gpu = max(1, int(1.0 / memory_fraction))
        limits.append((per_gpu * len(gpus), f"{len(gpus)} GPU(s) at parallel.memory_fraction "
                                            f"= {memory_fraction:g}"))
    limit, reason = min(limits, key=lambda pair: pair[0])
    if workers <= limit:
        return workers, None
    return limit, f"parallel.workers = {workers} capped to {limit}: {reason}"


def chief_environment(host, port, tuner_id="chief"):
    return {"KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": host,
            "KERASTUNER_ORACLE_PORT": str(port)}


def gpu_ids():
    """The GPUs workers are pinned to round-robin ([] on a CPU machine)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                 timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU")]


def worker_environment(index, workers, host, port, memory_fraction=0.0, gpus=None):
    """Environment of worker ``index``: KerasTuner ids, GPU pinning, memory caps."""
    env = dict(os.environ)
    env.update(chief_environment(host, port, f"tuner{index}"))
    gpus = gpu_ids() if gpus is None else gpus
    per_gpu = max(1, -(-workers // max(1, len(gpus))))  # workers sharing one GPU
    fraction = memory_fraction or 0.9 / per_gpu
    env.update({
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",          # TensorFlow: grow, do not grab all
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",     # JAX: no 75% preallocation
        "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{fraction:.3f}",
        "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    })
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    return env


def spawn_workers(config_path, host, port, workers, log_dir, memory_fraction=0.0):
    """Start ``workers`` `kerastrain worker` processes; returns the `Popen` list."""
    os.makedirs(log_dir, exist_ok=True)
    gpus = gpu_ids()
    processes = []
    for index in range(workers):
        log = open(os.path.join(log_dir, f"worker_{index}.log"), "ab")  # noqa: SIM115
        command = [sys.executable, "-m", "kerastrain.cli", "worker", config_path,
                   "--chief", f"{host}:{port}", "--tuner-id", f"tuner{index}"]
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=worker_environment(index, workers, host, port, memory_fraction, gpus))
        process.log = log
        process.log_path = log.name
        process.tuner_id = f"tuner{index}"
        processes.append(process)
    return processes


def describe_exit(process):
    """One line: which worker ended, how (exit code or signal), and its log file."""
    name = getattr(process, "tuner_id", None) or "worker"
    code = process.returncode
    if code is not None and code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    text = f"worker {name} (pid {process.pid}) {how}"
    log_path = getattr(process, "log_path", None)
    if log_path:
        text += f"; its log: {log_path}"
        last = _last_line(log_path)
        if last:
            text += f" (last line: {last})"
    return text


def _last_line(path, limit=4096):
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - limit))
            lines = stream.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


def stop_processes(processes, timeout=10.0):
    """Terminate (then kill) each process by PID; close their logs."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log = getattr(process, "log", None)
        if log is not None:
            log.close()


def serve(tuner, host, port, processes=(), time_limit=None, on_poll=None, poll=0.2,
          report=None):
    """Serve ``tuner.oracle`` on ``host:port`` until every trial has ended.

    Returns when the oracle has stopped every worker and no trial is running;
    raises `WorkerFailedError` when all local ``processes`` exited before that.
    A worker that dies (non-zero exit code or a signal) is described with
    `describe_exit` through ``report`` (default: standard error) when it happens.
    """
    report = report or _report
    import grpc

    check_port_free(host, port)
    oracle = tuner.oracle
    tuner.save()
    server = grpc.server(_executor())
    servicer = _compat.add_oracle_servicer(oracle, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise _validation.argument_error("chief", "be a free port on a local address",
                                         f"{host}:{port}", "Choose another port.")
    server.start()
    started = time.monotonic()
    dead = {}
    try:
        while True:
            time.sleep(poll)
            if on_poll is not None:
                on_poll()
            for process in processes:
                if process.pid not in dead and process.poll() not in (None, 0):
                    dead[process.pid] = describe_exit(process)
                    report(dead[process.pid])
            if time_limit and time.monotonic() - started > time_limit:
                oracle.max_trials = max(1, len(oracle.trials))
            if servicer.stop_triggered and _compat.chief_may_exit(oracle):
                return
            if processes and all(p.poll() is not None for p in processes):
                if _finished(oracle):
                    return
                died = "; ".join(dead.values()) or (
                    "every worker exited; see their logs in "
                    f"{os.path.join(tuner.project_dir, 'logs')}")
                raise WorkerFailedError(
                    f"the search is not finished: {died}. Re-run the same command to resume "
                    "(unfinished trials are re-run).")
    finally:
        server.stop(grace=1.0)


def _report(line):
    print(f"kerastrain tune: {line}", file=sys.stderr, flush=True)


def _finished(oracle):
    return (not oracle.ongoing_trials and oracle.max_trials is not None
            and len(_compat.end_order(oracle)) >= oracle.max_trials)


def _executor():
    from concurrent import futures

    return futures.ThreadPoolExecutor(max_workers=1)  # the oracle is not thread-safe


def client_timeout(seconds):
    """A ``with`` block in which every worker-to-chief call is capped at ``seconds``
    (KerasTuner's default is 1 hour); KerasTuner's setting is restored on exit."""
    return _compat.client_timeout(seconds)


def unreachable_message(error, host, port, timeout):
    """A `ChiefUnreachableError` for a gRPC error, or None if it is another error."""
    import grpc

    code = error.code() if isinstance(error, grpc.RpcError) and hasattr(error, "code") else None
    if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
        return ChiefUnreachableError(
            f"could not reach the chief oracle at {host}:{port} within {timeout:g} s. "
            "Start `kerastrain tune --chief HOST:PORT` first, check the address and "
            "firewall, or raise parallel.connect_timeout.")
    return None


class ChiefWatchdog:
    """Ends a worker whose chief cannot be reached for ``timeout`` seconds.

    A thread connects to the chief's port every ``interval`` seconds (a plain TCP
    connect: a dead chief refuses at once, an unreachable one times out). After
    ``timeout`` seconds without a successful connect it prints one line and ends
    the process with status 2: whatever trial the worker was running belongs to
    the chief's saved state and is re-run when the search resumes, so nothing is
    reported as a failed trial and no gRPC traceback is printed.
    """

    def __init__(self, host, port, timeout, command="worker", interval=None, exit=os._exit):
        self.host, self.port, self.timeout = host, port, float(timeout)
        self.command = command
        self.interval = interval or min(1.0, self.timeout / 4)
        self.exit = exit
        self.reached = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="chief-watchdog",
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(self.interval + 1.0)
        return False

    def _reachable(self):
        try:
            with socket.create_connection((self.host, self.port),
                                          timeout=min(self.interval, 5.0)):
                return True
        except OSError:
            return False

    def _watch(self):
        last_seen = time.monotonic()
        while not self._stop.wait(self.interval):
            if self._reachable():
                self.reached, last_seen = True, time.monotonic()
            elif time.monotonic() - last_seen >= self.timeout and not self._stop.is_set():
                print(f"kerastrain {self.command}: error: {self.message()}", file=sys.stderr,
                      flush=True)
                self.exit(2)
                return

    def message(self):
        if self.reached:
            return (f"lost the chief oracle at {self.host}:{self.port} (unreachable for "
                    f"{self.timeout:g} s); this worker stops. Its unfinished trial is re-run "
                    "when the chief resumes the search.")
        return str(ChiefUnreachableError(
            f"could not reach the chief oracle at {self.host}:{self.port} within "
            f"{self.timeout:g} s. Start `kerastrain tune --chief HOST:PORT` first, check the "
            "address and firewall, or raise parallel.connect_timeout."))
