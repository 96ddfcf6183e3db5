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
import socket
import subprocess
import sys
import time

from kerastrain import _validation


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
        processes.append(process)
    return processes


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


def serve(tuner, host, port, processes=(), time_limit=None, on_poll=None, poll=0.2):
    """Serve ``tuner.oracle`` on ``host:port`` until every trial has ended.

    Returns when the oracle has stopped every worker and no trial is running;
    raises `WorkerFailedError` when all local ``processes`` exited before that.
    """
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    check_port_free(host, port)
    oracle = tuner.oracle
    tuner.save()
    server = grpc.server(_executor())
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise _validation.argument_error("chief", "be a free port on a local address",
                                         f"{host}:{port}", "Choose another port.")
    server.start()
    started = time.monotonic()
    try:
        while True:
            time.sleep(poll)
            if on_poll is not None:
                on_poll()
            if time_limit and time.monotonic() - started > time_limit:
                oracle.max_trials = max(1, len(oracle.trials))
            if servicer.stop_triggered and oracle_chief.exit_chief(oracle):
                return
            if processes and all(p.poll() is not None for p in processes):
                if _finished(oracle):
                    return
                raise WorkerFailedError(
                    "every worker exited before the search finished; see their logs in "
                    f"{os.path.join(tuner.project_dir, 'logs')}")
    finally:
        server.stop(grace=1.0)


def _finished(oracle):
    return (not oracle.ongoing_trials and oracle.max_trials is not None
            and len(oracle.end_order) >= oracle.max_trials)


def _executor():
    from concurrent import futures

    return futures.ThreadPoolExecutor(max_workers=1)  # the oracle is not thread-safe


def set_client_timeout(seconds):
    """Cap every worker-to-chief call at ``seconds`` (KerasTuner's default is 1 hour)."""
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = float(seconds)


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
