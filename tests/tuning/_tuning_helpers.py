"""Tiny data, configs and subprocess helpers shared by the tuning tests."""

import os
import subprocess
import sys

import numpy as np

from kerastrain.tuning import _config, _results


def blobs(n=120, features=6, classes=3, seed=0):
    """Well-separated Gaussian blobs: integer labels, float32 features."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 3.0, size=(classes, features))
    y = np.arange(n) % classes
    x = centers[y] + rng.normal(0.0, 1.0, size=(n, features))
    return x.astype(np.float32), y.astype(np.int64)


def results_rows(tuner):
    """``results.csv`` of ``tuner``'s search, as ``{trial_id: row}``."""
    rows, _ = _results.read_results(os.path.join(tuner.project_dir, _results.RESULTS_FILE))
    return {row["trial_id"]: row for row in rows}


def write_npz(directory, n=120):
    x, y = blobs(n)
    path = os.path.join(directory, "blobs.npz")
    np.savez(path, x=x, y=y)
    return path


def tiny_config(directory, data_path, **sections):
    """A fast config: fixed small MLP (only learning rate and units searched)."""
    overrides = {
        "data": {"source": data_path},
        "model": {"layers": [1, 1], "units": [8, 16], "activations": ["relu"],
                  "initializers": ["glorot_uniform"], "optimizers": ["adam"],
                  "learning_rate": [0.01, 0.05], "schedules": ["constant"], "l2": [0.0, 0.0],
                  "dropout": [0.0, 0.0], "batch_norm": [False], "batch_sizes": [32]},
        "search": {"max_trials": 3, "max_epochs": 2, "vectorize": False},  # vectorized: own tests
        "pruning": {"enabled": False},
        "output": {"directory": directory, "tensorboard": False, "retrain": False},
    }
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    return _config.load_config(None, overrides)


def write_config(path, config):
    with open(path, "w") as stream:
        stream.write(_config.to_toml(config))
    return path


def cli(*args, timeout=240, env=None):
    """`python -m kerastrain.cli ARGS` in a subprocess (its own backend import)."""
    return subprocess.run(
        [sys.executable, "-m", "kerastrain.cli", *args], capture_output=True, text=True,
        timeout=timeout, env=dict(os.environ, **(env or {})), stdin=subprocess.DEVNULL)


def tree(directory):
    """``{relative path: bytes}`` of every file under ``directory``."""
    contents = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as stream:
                contents[os.path.relpath(path, directory)] = stream.read()
    return contents
