"""Timing and reporting helpers shared by every benchmark."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import time


def time_call(function, repeat=5, warmup=1, number=1):
    """Median seconds per call of ``function()`` over ``repeat`` rounds.

    ``number`` calls are made per round (for very short functions); ``warmup``
    rounds run first and are discarded (compilation, caches).
    """
    for _ in range(warmup):
        for _ in range(number):
            function()
    samples = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        for _ in range(number):
            function()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def interleaved(candidates, repeat=5, warmup=1, number=1, clock=time.perf_counter):
    """Time several functions round-robin so drift hits them all alike.

    Args:
        candidates: ``{label: function}``.
        clock: ``time.perf_counter`` (wall time, default) or ``time.process_time``
            (this process's CPU time, all threads: on a CPU shared with other
            jobs, wall time mostly measures the neighbours).

    Returns ``{label: median seconds per call}``.
    """
    for function in candidates.values():
        for _ in range(warmup):
            for _ in range(number):
                function()
    samples = {label: [] for label in candidates}
    for _ in range(repeat):
        for label, function in candidates.items():
            gc.collect()
            start = clock()
            for _ in range(number):
                function()
            samples[label].append((clock() - start) / number)
    return {label: statistics.median(values) for label, values in samples.items()}


def machine():
    """A description of where the benchmark ran."""
    import keras

    try:
        devices = [str(device) for device in keras.distribution.list_devices()]
    except Exception:  # informational only
        devices = []
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.config.backend(),
        "devices": devices,
        "gpu": any("gpu" in device.lower() or "cuda" in device.lower() for device in devices),
    }


def report(name, result, out_dir):
    """Print ``result["ratios"]`` and write the whole result as JSON."""
    result = dict(result)
    result["benchmark"] = name
    result["machine"] = machine()
    result["time"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"== {name} on {result['machine']['backend']} "
          f"({'GPU' if result['machine']['gpu'] else 'CPU'}: "
          f"{', '.join(result['machine']['devices'])})")
    for label, ratio in result.get("ratios", {}).items():
        print(f"  {label:<48s} {ratio:8.3f}x")
    os.makedirs(out_dir, exist_ok=True)
    suffix = "gpu" if result["machine"]["gpu"] else "cpu"
    path = os.path.join(out_dir, f"{name}-{result['machine']['backend']}-{suffix}.json")
    with open(path, "w") as handle:
        json.dump(result, handle, indent=2, default=str)
    print(f"  wrote {path}")
    return path
