"""Run a search from a config: data, hypermodel, tuner, workers, final report."""

from __future__ import annotations

import contextlib
import json
import os
import sys

import numpy as np

from kerastrain import _compat
from kerastrain.tuning import _config, _data, _parallel, _results


def build_hypermodel(config, splits):
    """The hypermodel ``[model]`` describes, for the data in ``splits``."""
    from kerastrain.tuning._spaces import MLPHyperModel, hypermodel_from_function

    model = config["model"]
    if model["build"] != "mlp":
        return hypermodel_from_function(_data.import_object(model["build"], "model.build"))
    batches = -(-len(splits.x_train) // max(model["batch_sizes"]))
    return MLPHyperModel(
        input_shape=splits.x_train.shape[1:], num_classes=splits.num_classes,
        layers=model["layers"], units=model["units"], activations=model["activations"],
        initializers=model["initializers"], optimizers=model["optimizers"],
        learning_rate=model["learning_rate"],
        learning_rate_step=model["learning_rate_step"] or None, schedules=model["schedules"],
        l2=model["l2"], dropout=model["dropout"], batch_norm=model["batch_norm"],
        batch_sizes=model["batch_sizes"], decay_steps=max(1, batches),
        steps_per_execution=model["steps_per_execution"])


def objective_of(config, splits):
    search = config["search"]
    objective = search["objective"]
    if objective == "auto":
        objective = "val_accuracy" if splits.num_classes else "val_loss"
    direction = None if search["direction"] == "auto" else search["direction"]
    return objective, direction


def make_tuner(config, splits, progress=None, overwrite=None):
    from kerastrain.tuning._pruning import MedianStoppingPruner
    from kerastrain.tuning._tuner import create_tuner

    resolve_budget(config)  # max_trials = 0 -> 64 or 8
    search, pruning, output = config["search"], config["pruning"], config["output"]
    objective, direction = objective_of(config, splits)
    pruner = (MedianStoppingPruner(pruning["min_trials"], pruning["warmup_epochs"])
              if pruning["enabled"] else None)
    return create_tuner(
        search["tuner"], build_hypermodel(config, splits), objective=objective,
        direction=direction, max_trials=search["max_trials"], max_epochs=search["max_epochs"],
        cv=search["cv"], pruner=pruner, seed=search["seed"], directory=output["directory"],
        project_name=output["project_name"],
        overwrite=output["overwrite"] if overwrite is None else overwrite,
        tensorboard=output["tensorboard"], time_limit=search["time_limit"] or None,
        progress=progress, vectorize=search["vectorize"])


def search_data(config, splits):
    """``(x, y, validation_data)`` a trial trains on."""
    if config["search"]["cv"]:
        return splits.x_fit, splits.y_fit, None
    return splits.x_train, splits.y_train, (splits.x_val, splits.y_val)


def report_line(line):
    """One line on standard error (why a search runs trials one at a time)."""
    import sys

    print(f"kerastrain tune: {line}", file=sys.stderr, flush=True)


def run_local(config, splits, progress=None):
    """The search in this process; returns the tuner."""
    from kerastrain.tuning._tuner import search

    tuner = make_tuner(config, splits, progress)
    save_config(tuner.project_dir, config)
    x, y, validation = search_data(config, splits)
    search(tuner, x, y, validation_data=validation, epochs=config["search"]["max_epochs"],
           report=report_line)
    return tuner


@contextlib.contextmanager
def _environment(values):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_chief(config, splits, progress=None, workers=None, report=None):
    """Serve the oracle and run ``workers`` local worker processes; returns the tuner."""
    parallel = config["parallel"]
    if parallel["chief"]:
        host, port = _config.parse_address(parallel["chief"], "parallel.chief")
    else:
        host, port = "127.0.0.1", _parallel.free_port()
    workers = parallel["workers"] if workers is None else workers
    _parallel.check_port_free(host, port)
    with _environment(_parallel.chief_environment(host, port)):
        tuner = make_tuner(config, splits)
    tuner.oracle.verbose = 0  # progress is shown by the caller, not KerasTuner's display
    save_config(tuner.project_dir, config)
    config_path = os.path.join(tuner.project_dir, "config.toml")
    worker_config = _copy(config)
    worker_config["output"]["overwrite"] = False
    worker_config["parallel"].update(chief="", workers=1)
    if worker_config["search"]["vectorize"] == "auto" and workers:
        # Each local worker takes groups of at most its share, so every worker gets trials.
        share = -(-config["search"]["max_trials"] // workers)
        worker_config["search"]["vectorize"] = max(1, share)
    _results.atomic_write_text(config_path, _config.to_toml(worker_config))
    processes = []
    try:
        processes = _parallel.spawn_workers(
            config_path, "127.0.0.1" if host in ("0.0.0.0", "") else host, port, workers,
            os.path.join(tuner.project_dir, "logs"), parallel["memory_fraction"])
        watcher = _TrialWatcher(tuner, progress)
        _parallel.serve(tuner, host, port, processes,
                        time_limit=config["search"]["time_limit"] or None, on_poll=watcher,
                        report=report)
        watcher()
    finally:
        _parallel.stop_processes(processes)
    _results.write_results(tuner.project_dir)
    return tuner


def _copy(config):
    return {section: dict(values) for section, values in config.items()}


class _TrialWatcher:
    """Progress of a parallel search as seen by the chief (trials ended)."""

    def __init__(self, tuner, progress):
        self.tuner = tuner
        self.progress = progress
        self.seen = set()

    def __call__(self):
        oracle = self.tuner.oracle
        for trial_id in list(_compat.end_order(oracle)):
            if trial_id not in self.seen:
                self.seen.add(trial_id)
                if self.progress is not None:
                    trial = oracle.trials[trial_id]
                    self.progress.trial_done(trial_id, trial.score)


def run_worker(config, chief, tuner_id=None, connect_timeout=None):
    """One worker: runs trials the chief at ``chief`` hands out until it says stop."""
    import grpc

    from kerastrain.tuning._tuner import search

    host, port = _config.parse_address(chief, "chief")
    timeout = connect_timeout or config["parallel"]["connect_timeout"]
    tuner_id = tuner_id or f"worker-{socket_name()}-{os.getpid()}"
    splits = _data.load_splits(config["data"], config["search"]["seed"])
    # The watchdog ends the worker first (one line, within `timeout` plus its poll);
    # the client's own deadline is the fallback.
    with _environment(_parallel.chief_environment(host, port, tuner_id)), \
            _parallel.client_timeout(timeout + 5.0), \
            _parallel.ChiefWatchdog(host, port, timeout):
        tuner = make_tuner(config, splits, overwrite=False)
        x, y, validation = search_data(config, splits)
        try:
            search(tuner, x, y, validation_data=validation, report=report_line,
                   epochs=config["search"]["max_epochs"])
        except grpc.RpcError as error:
            unreachable = _parallel.unreachable_message(error, host, port, timeout)
            if unreachable is None:
                raise
            raise unreachable from None
    return tuner


def socket_name():
    import socket

    return socket.gethostname()


def best_summary(tuner, splits, config):
    """Best hyperparameters; the best configuration retrained and tested."""
    import keras

    best_trial = tuner.oracle.get_best_trials(1)
    if not best_trial:
        return None
    best_trial = best_trial[0]
    record = _results.read_curve(os.path.join(tuner.project_dir,
                                              f"trial_{best_trial.trial_id}"))
    active = record.get("active")
    # Retrain for the epochs the trial was scored after: Hyperband finds trials in
    # rounds of fewer than max_epochs.
    epochs = (_results.trained_epochs(record)
              or best_trial.hyperparameters.values.get("tuner/epochs")
              or config["search"]["max_epochs"])
    summary = {"trial_id": best_trial.trial_id, "score": best_trial.score, "epochs": epochs,
               "hyperparameters": {k: v for k, v in best_trial.hyperparameters.values.items()
                                   if not k.startswith("tuner/")
                                   and (active is None or k in active)}}
    if not config["output"]["retrain"]:
        return summary
    keras.backend.clear_session()
    _compat.set_random_seed(config["search"]["seed"])
    hp = best_trial.hyperparameters
    model = tuner.hypermodel.build(hp)
    tuner.hypermodel.fit(hp, model, splits.x_fit, splits.y_fit, epochs=epochs, verbose=0)
    results = model.evaluate(splits.x_test, splits.y_test, verbose=0, return_dict=True)
    summary["test"] = {name: float(np.asarray(value)) for name, value in results.items()}
    summary["model"] = os.path.join(tuner.project_dir, BEST_MODEL_FILE)
    model.save(summary["model"])
    return summary


def resolve_budget(config):
    """``search.max_trials = 0`` (the default) made concrete: 64 trials where the search
    vectorizes, 8 where trials run one at a time (about the same time on a 2-core CPU)."""
    from kerastrain.tuning import _vectorized

    if config["search"]["max_trials"] == 0:
        vectorized = _vectorized.vectorizes(config)
        config["search"]["max_trials"] = (_vectorized.DEFAULT_TRIALS if vectorized
                                          else _vectorized.SEQUENTIAL_TRIALS)
    return config


def run_config(config, progress=None, report=None):
    """Run (or resume) the search a config describes, as `kerastrain tune` does.

    Args:
        config: a dict from `load_config` / `default_config`.
        progress: ``None`` or an object with ``start_trial/advance/end_trial/trial_done``.
        report: called with each one-line note (workers capped, a resumed search's
            applied changes, a worker that died); default: print to standard error.

    Returns ``(tuner, summary)``: the tuner (its project directory holds
    ``results.csv``) and the best trial's id, score, hyperparameters and, with
    ``output.retrain``, test metrics of the best configuration retrained (saved as
    ``best_model.keras`` in the project directory).
    """
    config = resolve_budget(_config.check(_copy(config)))
    report = report or _report
    parallel = config["parallel"]
    project_dir = check_output_directory(config["output"])
    if parallel["chief"]:
        _parallel.check_port_free(*_config.parse_address(parallel["chief"], "parallel.chief"))
    notes = resume_notes(config, project_dir)  # refuses a changed search, changes nothing
    if parallel["workers"] > 1:
        parallel["workers"], why = _parallel.bound_workers(
            parallel["workers"], config["search"]["max_trials"], parallel["memory_fraction"])
        if why:
            report(why + ("" if parallel["workers"] > 1 or parallel["chief"]
                          else " (the trial runs in this process)"))
    for note in notes:
        report(note)
    splits = _data.load_splits(config["data"], config["search"]["seed"])
    if parallel["chief"] or parallel["workers"] > 1:
        tuner = run_chief(config, splits, progress, report=report)
    else:
        tuner = run_local(config, splits, progress)
    return tuner, best_summary(tuner, splits, config)


BEST_MODEL_FILE = "best_model.keras"


def _report(line):
    print(f"kerastrain tune: {line}", file=sys.stderr, flush=True)


def check_output_directory(output):
    """The project directory; ValueError if it or ``output.directory`` is a file."""
    directory = output["directory"]
    project_dir = os.path.join(directory, output["project_name"])
    for path in (directory, project_dir):
        if os.path.exists(path) and not os.path.isdir(path):
            raise ValueError(
                f"Argument `output.directory` must be a directory (or a path to create). "
                f"Received: output.directory={directory!r}, but {path!r} is an existing "
                "file. Choose another --directory.")
    return project_dir


def save_config(project_dir, config):
    """Record the config a search runs with (`resume_notes` compares the next run's)."""
    _results.atomic_write_json(os.path.join(project_dir, _config.SAVED_CONFIG_FILE), config)


def resume_notes(config, project_dir):
    """Notes of the safe changes a resumed search applies; ValueError for unsafe ones.

    Only a search that has started a trial is checked, against the config saved
    when it was started (or last resumed); ``output.overwrite`` skips the check.
    """
    saved_path = os.path.join(project_dir, _config.SAVED_CONFIG_FILE)
    if config["output"]["overwrite"] or not os.path.exists(saved_path):
        return []
    if not any(name.startswith("trial_") for name in os.listdir(project_dir)):
        return []
    try:
        with open(saved_path) as stream:
            saved = json.load(stream)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"Cannot resume: {saved_path!r} is damaged ({error}). Restore it, or start "
            "afresh with --overwrite or a new --directory.") from None
    return _config.check_resume(config, saved, project_dir)
