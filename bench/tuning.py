"""Hyperparameter search throughput: kerastrain `workers=N` vs plain KerasTuner.

Same search space (the chapter's MLP space on bundled digits), same budget
(trials x epochs), same seed, one process/session:

* ``keras_tuner``: plain `keras_tuner.RandomSearch(...).search(...)`;
* ``kerastrain_w1``: kerastrain's tuner in this process (CV off, pruning off);
* ``kerastrain_wN``: kerastrain with ``N`` worker processes and a chief oracle
  on 127.0.0.1 (KerasTuner's own chief/worker mode).

Ratios are seconds per completed trial, kerastrain / KerasTuner (below 1 is
faster). Also: the median stopping rule's epochs saved and best scores, with
and without it. ``--quick`` is a CPU smoke run; the GPU figure (target: >= 4x
trials per hour) needs ``bash bench/gpu.sh tuning`` on the GPU machine.
Environment: ``KERASTRAIN_BENCH_WORKERS`` (default 2 quick / 4 full).
"""

from __future__ import annotations

import os
import tempfile
import time


def _config(directory, quick, **sections):
    from kerastrain.tuning import _config

    overrides = {
        "search": {"max_trials": 4 if quick else 24, "max_epochs": 3 if quick else 15},
        "pruning": {"enabled": False},
        "model": {"steps_per_execution": 1 if quick else 8},
        "output": {"directory": directory, "tensorboard": False, "retrain": False,
                   "overwrite": True},
    }
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    return _config.load_config(None, overrides)


def _completed(tuner):
    return sum(1 for t in tuner.oracle.trials.values() if t.status == "COMPLETED")


def _plain_keras_tuner(config, splits):
    import keras_tuner

    from kerastrain.tuning import _driver

    search = config["search"]
    tuner = keras_tuner.RandomSearch(
        _driver.build_hypermodel(config, splits), objective="val_accuracy",
        max_trials=search["max_trials"], seed=search["seed"],
        directory=config["output"]["directory"], project_name="plain", overwrite=True)
    tuner.search(splits.x_train, splits.y_train, validation_data=(splits.x_val, splits.y_val),
                 epochs=search["max_epochs"], verbose=0)
    return tuner


def _timed(function):
    start = time.perf_counter()
    tuner = function()
    seconds = time.perf_counter() - start
    trials = _completed(tuner)
    best = max((t.score for t in tuner.oracle.trials.values() if t.score is not None),
               default=None)
    return {"seconds": seconds, "trials": trials, "seconds_per_trial": seconds / max(1, trials),
            "trials_per_hour": 3600.0 * trials / seconds, "best_score": best}


def _epochs(tuner):
    return sum(t.metrics.get_last_value("epochs") or 0 for t in tuner.oracle.trials.values())


def run(quick):
    from kerastrain.tuning import _data, _driver

    workers = int(os.environ.get("KERASTRAIN_BENCH_WORKERS", 2 if quick else 4))
    results = {"workers": workers}
    with tempfile.TemporaryDirectory() as root:
        config = _config(os.path.join(root, "w1"), quick)
        splits = _data.load_splits(config["data"], config["search"]["seed"])
        results["budget"] = {k: config["search"][k] for k in ("max_trials", "max_epochs")}
        results["keras_tuner"] = _timed(lambda: _plain_keras_tuner(config, splits))
        results["kerastrain_w1"] = _timed(lambda: _driver.run_local(config, splits))
        parallel = _config(os.path.join(root, "wn"), quick, parallel={"workers": workers})
        results[f"kerastrain_w{workers}"] = _timed(
            lambda: _driver.run_chief(parallel, splits))

        pruned_config = _config(os.path.join(root, "pruned"), quick,
                                pruning={"enabled": True, "min_trials": 2, "warmup_epochs": 1})
        start = time.perf_counter()
        pruned = _driver.run_local(pruned_config, splits)
        seconds = time.perf_counter() - start
        unpruned = _driver.run_local(_config(os.path.join(root, "w1"), quick,
                                             output={"overwrite": False}), splits)
        results["pruning"] = {
            "epochs_with_pruner": _epochs(pruned), "epochs_without": _epochs(unpruned),
            "best_with_pruner": pruned.oracle.get_best_trials(1)[0].score,
            "best_without": unpruned.oracle.get_best_trials(1)[0].score,
            "seconds_with_pruner": seconds,
        }
    base = results["keras_tuner"]["seconds_per_trial"]
    results["ratios"] = {
        "kerastrain w1 s/trial / keras_tuner": results["kerastrain_w1"]["seconds_per_trial"] / base,
        f"kerastrain w{workers} s/trial / keras_tuner":
            results[f"kerastrain_w{workers}"]["seconds_per_trial"] / base,
        "pruner epochs / no pruner": results["pruning"]["epochs_with_pruner"]
            / max(1.0, results["pruning"]["epochs_without"]),
    }
    return results
