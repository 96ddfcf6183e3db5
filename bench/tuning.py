"""Hyperparameter search throughput: vectorized trials vs plain KerasTuner.

Same search space (the chapter's MLP space of `kerastrain tune`'s default
config), same budget (trials x epochs), same seed, one process (every module imported before the first run is
timed), vectorized first (so it pays the process's cold compile caches; the
others find the layer initializers of the same trials compiled):

* ``keras_tuner``: plain `keras_tuner.RandomSearch(...).search(...)` of the
  same hypermodel (one trial at a time, `model.fit`);
* ``sequential``: kerastrain's tuner with ``vectorize=False`` (one trial at a
  time, with kerastrain's bookkeeping: results, checkpoints, NaN checks);
* ``vectorized``: kerastrain's tuner with ``vectorize="auto"`` (groups of
  trials as one compiled program; JAX and TensorFlow: elsewhere it falls back and says
  so).

A third case is a user's ``build(hp)`` (a fixed digits MLP, the learning rate
searched; 32 trials x 10 epochs): plain KerasTuner vs kerastrain sequential vs
kerastrain vectorized (Keras's own train step mapped over the members; JAX only: on
TensorFlow it falls back and says so).

Two datasets: scikit-learn's bundled digits (1,797 x 64; the default space,
64 trials x 10 epochs) and an in-memory dataset of MNIST's size (60,000 x 784,
10 classes, generated: no download; fewer trials, its plain KerasTuner run
alone takes minutes). Reported: seconds, trials per hour, the ratio of trials
per hour to plain KerasTuner's, per group the first-epoch seconds (compilation
included) against a later epoch's, the state bytes per member, and the best
validation score of each run (vectorizing must not change what the search
finds: same trials, same scores). ``--quick``: a smoke run of a few trials.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np


def _config(directory, trials, epochs, data=None):
    from kerastrain.tuning import _config

    overrides = {
        "search": {"max_trials": trials, "max_epochs": epochs},
        "pruning": {"enabled": False},
        "output": {"directory": directory, "tensorboard": False, "retrain": False,
                   "overwrite": True},
    }
    if data is not None:
        overrides["data"] = {"source": data}
    return _config.load_config(None, overrides)


def mnist_sized(n=60_000, features=784, classes=10, seed=0):
    """``(x, y)``: 10 Gaussian classes in 784 dimensions, overlapping (not separable)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 0.12, size=(classes, features)).astype(np.float32)
    y = rng.integers(0, classes, size=n)
    x = centers[y] + rng.normal(0.0, 1.0, size=(n, features)).astype(np.float32)
    return x, y.astype(np.int64)


def _summary(tuner, seconds):
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    best = max((t.score for t in trials if t.score is not None), default=None)
    return {"seconds": seconds, "trials": len(trials),
            "trials_per_hour": 3600.0 * len(trials) / seconds, "best_score": best}


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


def _kerastrain(config, splits, vectorize):
    from kerastrain.tuning import _driver

    config["search"]["vectorize"] = vectorize
    return _driver.run_local(config, splits)


def _timed(function):
    start = time.perf_counter()
    tuner = function()
    return tuner, time.perf_counter() - start


def _case(root, name, trials, epochs, splits_of):
    config = _config(os.path.join(root, name), trials, epochs)
    splits = splits_of(config)
    result = {"budget": {"trials": trials, "epochs": epochs,
                         "train_examples": int(len(splits.x_train))}}
    runs = {}
    # Vectorized first: it runs with cold caches (JAX compiles the initializers of every
    # new layer shape once per process; the runs after it find them compiled).
    for label, vectorize in (("vectorized", "auto"), ("sequential", False)):
        config = _config(os.path.join(root, f"{name}_{label}"), trials, epochs)
        tuner, seconds = _timed(lambda config=config, vectorize=vectorize: _kerastrain(
            config, splits, vectorize))
        result[label] = _summary(tuner, seconds)
        runs[label] = tuner
    tuner, seconds = _timed(lambda: _plain_keras_tuner(config, splits))
    result["keras_tuner"] = _summary(tuner, seconds)
    vectorized = runs["vectorized"]
    result["vectorized"]["members"] = getattr(vectorized, "vectorize_members", 0)
    result["vectorized"]["fallback"] = getattr(vectorized, "vectorize_reason", None)
    result["vectorized"]["groups"] = getattr(vectorized, "vectorized_groups", [])
    scores = {label: {t.trial_id: t.score for t in tuner.oracle.trials.values()}
              for label, tuner in runs.items()}
    same = [tid for tid in scores["sequential"]
            if scores["sequential"][tid] is not None and scores["vectorized"].get(tid) is not None]
    result["same_trials_max_score_difference"] = max(
        (abs(scores["sequential"][t] - scores["vectorized"][t]) for t in same), default=None)
    return result


def _user_build(hp):
    """A user's ``build(hp)``: a fixed digits MLP, the learning rate searched (one program)."""
    import keras

    model = keras.Sequential([
        keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(0.2), keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(hp.Float("learning_rate", 1e-4, 3e-2, sampling="log")),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _user_build_case(root, trials, epochs, splits):
    """Plain KerasTuner vs kerastrain (sequential, vectorized) on a user's build(hp)."""
    import keras_tuner

    from kerastrain.tuning._tuner import create_tuner, search

    data = dict(validation_data=(splits.x_val, splits.y_val), batch_size=32)
    result = {"budget": {"trials": trials, "epochs": epochs,
                         "train_examples": int(len(splits.x_train))}}
    runs = {}
    for label, vectorize in (("vectorized", "auto"), ("sequential", False)):
        tuner = create_tuner("random", _user_build, max_trials=trials, max_epochs=epochs,
                             seed=1, directory=os.path.join(root, f"user_{label}"),
                             tensorboard=False, vectorize=vectorize)
        start = time.perf_counter()
        search(tuner, splits.x_train, splits.y_train, epochs=epochs, report=print, **data)
        result[label] = _summary(tuner, time.perf_counter() - start)
        runs[label] = tuner
    plain = keras_tuner.RandomSearch(_user_build, objective="val_accuracy", max_trials=trials,
                                     seed=1, directory=root, project_name="user_plain",
                                     overwrite=True)
    start = time.perf_counter()
    plain.search(splits.x_train, splits.y_train, epochs=epochs, verbose=0, **data)
    result["keras_tuner"] = _summary(plain, time.perf_counter() - start)
    result["vectorized"]["groups"] = getattr(runs["vectorized"], "vectorized_groups", [])
    return result


def _import_everything():
    """Import, before any run is timed, what the three runs import lazily.

    Imports are a once-per-process cost that does not grow with trials; left in,
    the first run timed (the vectorized one) would pay all of them.
    """
    import keras
    import keras_tuner  # noqa: F401

    import kerastrain.callbacks  # noqa: F401
    import kerastrain.initializers  # noqa: F401
    import kerastrain.optimizers  # noqa: F401
    import kerastrain.schedules  # noqa: F401
    from kerastrain.tuning import _driver, _group, _members, _tuner, _vectorized  # noqa: F401

    if keras.config.backend() == "jax":
        import kerastrain._backend._vectorized_mlp  # noqa: F401
    elif keras.config.backend() == "tensorflow":
        import kerastrain._backend._vectorized_mlp_tf  # noqa: F401


def run(quick):
    from kerastrain.tuning import _data

    _import_everything()
    results = {}
    with tempfile.TemporaryDirectory() as root:
        def digits(config):
            return _data.load_splits(config["data"], config["search"]["seed"])

        def mnist(config):
            x, y = mnist_sized(n=6_000 if quick else 60_000)
            path = os.path.join(root, "mnist_sized.npz")
            np.savez(path, x=x, y=y)
            config["data"]["source"] = path
            return _data.load_splits(config["data"], config["search"]["seed"])

        results["digits"] = _case(root, "digits", 8 if quick else 64, 2 if quick else 10,
                                  digits)
        results["mnist_sized"] = _case(root, "mnist", 4 if quick else 8, 1 if quick else 2,
                                       mnist)
        config = _config(os.path.join(root, "user"), 1, 1)
        results["user_build"] = _user_build_case(root, 4 if quick else 32, 2 if quick else 10,
                                                 digits(config))
    ratios = {}
    for case, result in results.items():
        base = result["keras_tuner"]["trials_per_hour"]
        for label in ("sequential", "vectorized"):
            ratios[f"{case}: {label} trials/hour / keras_tuner"] = (
                result[label]["trials_per_hour"] / base)
    results["ratios"] = ratios
    return results
