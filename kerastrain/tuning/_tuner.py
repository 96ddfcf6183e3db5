"""KerasTuner's tuners with k-fold CV, pruning, a results table and safe resume.

`create_tuner(name, hypermodel, ...)` returns KerasTuner's own grid, random,
Bayesian or Hyperband tuner (their oracles decide; kerastrain writes no search
algorithm), extended where KerasTuner leaves gaps:

* ``cv=k``: each trial trains ``k`` models on stratified folds; its score is
  the mean of the per-fold best validation values, the std is recorded;
* ``pruner``: stops a trial whose validation curve trails the median of the
  completed trials (`MedianStoppingPruner`), decided by the oracle through
  ``oracle.update_trial`` answering "STOPPED" (`kerastrain.tuning._pruning`),
  the same in a sequential and a parallel search;
* each trial starts with `keras.backend.clear_session()`, so memory and layer
  names do not grow across trials;
* oracle, trial and tuner state are written atomically, and ``results.csv`` is
  rebuilt atomically after every trial, so a search killed at any point resumes
  by re-running the same call: completed trials are kept, the interrupted
  trial is re-run (KerasTuner's retry queue), nothing is counted twice;
* one TensorBoard run per trial (``<project>/tensorboard/trial_<id>``) with
  the HParams dashboard, written without TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings

import keras
import keras_tuner
import numpy as np
from keras_tuner.engine import trial as trial_module

from kerastrain import _compat, _validation
from kerastrain.tuning import _cv, _results, _vectorized
from kerastrain.tuning._pruning import PruningCallback, PruningOracle

TUNERS = ("random", "grid", "bayesian", "hyperband")


class _AtomicStateOracle(PruningOracle, _compat.OracleHooks):
    """Oracle mixin: ``oracle.json`` and ``trial.json`` written atomically; pruning
    decisions (`PruningOracle`)."""

    def save(self):
        _results.atomic_write_json(_compat.oracle_file(self), self.get_state())

    _deferred_trials = None

    def write_trial_state(self, trial):
        if self._deferred_trials is not None:
            self._deferred_trials[trial.trial_id] = trial
            return
        path = os.path.join(_compat.oracle_trial_dir(self, trial.trial_id), "trial.json")
        _results.atomic_write_json(path, trial.get_state())

    @contextlib.contextmanager
    def running_reports_in_memory(self):
        """Within the block, the reports of trials that are still running stay in memory.

        KerasTuner writes a trial's ``trial.json`` on every report; the vectorized tuner
        reports every member's every epoch. A trial still RUNNING when the block ends is
        not written (its file from `create_trial` says RUNNING, which is all a resumed
        search reads of it: it re-runs the trial from its start); a trial that ended
        inside the block is written once, on exit, with its final state.
        """
        self._deferred_trials = {}
        try:
            yield
        finally:
            pending, self._deferred_trials = self._deferred_trials, None
            for trial in pending.values():
                if trial.status != trial_module.TrialStatus.RUNNING:
                    self.write_trial_state(trial)

    def reload(self):
        """KerasTuner's reload, made consistent after a kill between two state files.

        A trial file saved just before ``oracle.json`` can be newer than it: a
        RUNNING trial the oracle does not know is running is queued for a re-run
        (else it would be lost), and a COMPLETED or FAILED trial still listed as
        running is not re-run (else it would run twice). A damaged (truncated)
        state file is named in a ValueError before anything is read or changed.
        """
        _results.check_state_files(_compat.oracle_project_dir(self))
        super().reload()
        retry, started, ended = (_compat.retry_queue(self), _compat.start_order(self),
                                 _compat.end_order(self))
        for trial_id, trial in self.trials.items():
            if trial.status in ("COMPLETED", "FAILED"):
                if trial_id in retry:
                    retry.remove(trial_id)
                if trial_id not in ended:
                    ended.append(trial_id)
            elif trial.status == "RUNNING" and trial_id not in retry:
                retry.append(trial_id)
                if trial_id not in started:
                    started.append(trial_id)

    def check_consecutive_failures(self):
        """KerasTuner's limit on consecutive FAILED trials (a broken build function),
        not counting trials failed by a non-finite loss: an outcome of their
        hyperparameters, which must not end the search."""
        consecutive = 0
        for trial_id in _compat.end_order(self):
            trial = self.trials[trial_id]
            if (str(trial.message or "").startswith(NonFiniteLossError.__name__ + ":")
                    or _results.read_curve(_compat.oracle_trial_dir(self, trial_id))
                    .get("failed")):
                continue  # (trial messages do not travel over gRPC: a worker's curve file)
            consecutive = consecutive + 1 if trial.status == "FAILED" else 0
            if consecutive == self.max_consecutive_failed_trials:
                raise RuntimeError("Number of consecutive failures exceeded the limit of "
                                   f"{self.max_consecutive_failed_trials}.\n"
                                   + (trial.message or ""))


def _oracle(name, objective, max_trials, max_epochs, seed, pruner=None):
    oracles = keras_tuner.oracles
    base = {
        "random": oracles.RandomSearchOracle, "grid": oracles.GridSearchOracle,
        "bayesian": oracles.BayesianOptimizationOracle, "hyperband": oracles.HyperbandOracle,
    }[name]
    cls = _compat.mixin_class(f"Atomic{base.__name__}", _AtomicStateOracle, base)
    if name == "hyperband":
        oracle = cls(objective=objective, max_epochs=max_epochs, seed=seed)
        oracle.max_trials = max_trials
    else:
        oracle = cls(objective=objective, max_trials=max_trials, seed=seed)
    if seed == 0:
        _seed_zero(oracle)
    oracle.pruner = pruner
    return oracle


def _seed_zero(oracle):
    """Seed 0 as seed 0: KerasTuner's oracles read it as "no seed" (``seed or
    random.randint(1, 10000)``), so a search with ``seed=0`` sampled differently each run."""
    oracle.seed = oracle._seed_state = 0
    if hasattr(oracle, "_make_gpr"):  # Bayesian optimization: its sampler and its GP
        oracle._random_state = np.random.RandomState(0)
        oracle.gpr = oracle._make_gpr()


def infer_direction(objective):
    """``"min"`` for losses and errors, ``"max"`` for accuracies and AUCs."""
    from keras_tuner.engine import metrics_tracking

    direction = metrics_tracking.infer_metric_direction(objective)
    if direction is None:
        raise _validation.argument_error(
            "direction", "be given ('min' or 'max') for this objective", None,
            f"The direction of objective {objective!r} cannot be inferred.")
    return direction


class NonFiniteLossError(keras_tuner.errors.FailedTrialError):
    """A trial's training loss became NaN or infinite: the trial is FAILED, not retried."""


class _FailOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` at the end of an epoch whose training loss is not finite.

    The epoch's loss is the mean over its batches, so one NaN/inf batch makes it NaN.
    Whatever the objective (an accuracy of NaN predictions still looks like a score),
    such a trial is recorded FAILED with this reason.
    """

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"training loss became {float(loss)} at epoch {epoch + 1}")


class _UsedHyperparameters:
    """Records which hyperparameters a build/fit reads (the others are inactive)."""

    def __init__(self, hp):
        self.hp, self.names = hp, set()

    def __enter__(self):
        self._recording = _compat.record_retrievals(self.hp, self._record)
        self._recording.__enter__()  # on this one object only, removed on exit
        return self

    def _record(self, hyperparameter):
        if self.hp.is_active(hyperparameter):  # a conditional one may be declared, inactive
            self.names.add(hyperparameter.name)

    def __exit__(self, *exc):
        self._recording.__exit__(*exc)
        return False


class _TrialCallback(keras.callbacks.Callback):
    """Records the objective curve; writes TensorBoard scalars; drives progress."""

    def __init__(self, objective, writer=None, run_prefix="", progress=None):
        super().__init__()
        self.objective = objective
        self.writer = writer
        self.run_prefix = run_prefix
        self.progress = progress
        self.curve = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.objective in logs:
            self.curve.append(float(logs[self.objective]))
        if self.writer is not None:
            for key, value in logs.items():
                run = "validation" if key.startswith("val_") else "train"
                tag = "epoch_" + (key[4:] if key.startswith("val_") else key)
                self.writer.scalar(tag, float(value), epoch, run=self.run_prefix + run)
        if self.progress is not None:
            self.progress.advance(self.objective, logs.get(self.objective))


class KerastrainTunerMixin(_compat.TunerHooks):
    """The run_trial / bookkeeping kerastrain adds to a KerasTuner tuner."""

    def _setup(self, cv, pruner, seed, tensorboard, progress, time_limit):
        self.cv = _cv.check_cv(cv)
        self.pruner = pruner
        self.seed = seed
        self.tensorboard = tensorboard
        self.progress = progress
        self.time_limit = time_limit
        self._search_started = time.monotonic()

    # -- bookkeeping ---------------------------------------------------------
    def save(self):
        _results.atomic_write_json(_compat.tuner_file(self), self.get_state())

    def on_search_begin(self):
        self._search_started = time.monotonic()
        super().on_search_begin()

    def pre_create_trial(self):
        if self.time_limit and time.monotonic() - self._search_started > self.time_limit:
            # Non-persistent: the oracle answers STOPPED to the next request.
            self.oracle.max_trials = max(1, len(getattr(self.oracle, "trials", {})))
        super().pre_create_trial()

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        _results.write_results(self.project_dir)

    def run_and_record_trial(self, trial, *fit_args, **fit_kwargs):
        """KerasTuner's ``_try_run_and_update_trial``, except that a non-finite loss fails
        the trial with its one-line reason and no printed traceback: it is an outcome
        of the hyperparameters."""
        try:
            _compat.run_and_update_trial(self, trial, *fit_args, **fit_kwargs)
        except NonFiniteLossError as error:
            trial.status = trial_module.TrialStatus.FAILED
            trial.message = f"{type(error).__name__}: {error}"
        except Exception as error:  # everything else: as KerasTuner 1.4 handles it
            import traceback

            if isinstance(error, keras_tuner.errors.FatalError):
                raise
            if _compat.debug_enabled():
                traceback.print_exc()
            trial.status = (trial_module.TrialStatus.FAILED
                            if isinstance(error, keras_tuner.errors.FailedTrialError)
                            else trial_module.TrialStatus.INVALID)
            trial.message = traceback.format_exc()
        else:
            trial.status = trial_module.TrialStatus.COMPLETED

    # -- one trial -----------------------------------------------------------
    def run_trial(self, trial, x, y, validation_data=None, epochs=1, callbacks=None,
                  **fit_kwargs):
        keras.backend.clear_session()  # memory must not grow across trials
        hp = trial.hyperparameters
        fit_kwargs["initial_epoch"] = 0
        if "tuner/epochs" in hp.values:
            epochs = hp.values["tuner/epochs"]
            fit_kwargs["initial_epoch"] = hp.values["tuner/initial_epoch"]
        objective = self.oracle.objective
        started = time.perf_counter()
        writer = self._writer(trial)
        if self.progress is not None:
            self.progress.start_trial(trial.trial_id, (epochs - fit_kwargs["initial_epoch"])
                                      * max(1, self.cv))
        trial_dir = os.path.join(self.project_dir, f"trial_{trial.trial_id}")
        values, curves, pruned = [], [], False
        try:
            with _UsedHyperparameters(hp) as used:
                splits = self._splits(x, y, validation_data)
                for index, (train, validation, prefix) in enumerate(splits):
                    if index:
                        keras.backend.clear_session()
                    value, curve, pruned = self._fit_split(
                        trial, train, validation, epochs, callbacks, writer, prefix, fit_kwargs,
                        curves)
                    values.append(value)
                    if pruned:
                        break
        except NonFiniteLossError as error:
            os.makedirs(trial_dir, exist_ok=True)
            _results.write_curve(trial_dir, _mean_curve(curves), False, self.tuner_id,
                                 fit_kwargs["initial_epoch"], used.names, failed=str(error))
            if self.progress is not None:
                self.progress.end_trial(trial.trial_id, None, False, reason=str(error))
            raise
        finally:
            if writer is not None:
                writer.close()
        score, std = _cv.summarize_folds(values)
        curve = _mean_curve(curves)
        os.makedirs(trial_dir, exist_ok=True)
        _results.write_curve(trial_dir, curve, pruned, self.tuner_id,
                             fit_kwargs["initial_epoch"], used.names)
        metrics = {objective.name: score, "epochs": float(sum(len(c) for c in curves)),
                   "pruned": float(pruned), "seconds": time.perf_counter() - started}
        if self.cv:
            metrics["score_std"] = std
        self._write_hparams(trial, score)
        if self.progress is not None:
            self.progress.end_trial(trial.trial_id, score, pruned)
        return metrics

    def _splits(self, x, y, validation_data):
        """``[(train, validation, run prefix)]``: k stratified folds, or the hold-out split."""
        if not self.cv:
            _check_validation_data(validation_data)
            return [((x, y), validation_data, "")]
        x, y = np.asarray(x), np.asarray(y)
        folds = _cv.kfold_indices(y, self.cv, seed=self.seed)
        return [((x[t], y[t]), (x[v], y[v]), f"fold_{i}/") for i, (t, v) in enumerate(folds)]

    def _fit_split(self, trial, train, validation, epochs, callbacks, writer, prefix,
                   fit_kwargs, curves):
        """Build and fit one model; returns (best objective value, curve, pruned).

        The curve is appended to ``curves`` before fitting, so a failed fit leaves
        the epochs it ran there.
        """
        hp, objective = trial.hyperparameters, self.oracle.objective
        _compat.set_random_seed(self.seed)
        model = _compat.try_build(self, hp)
        recorder = _TrialCallback(objective.name, writer, prefix, self.progress)
        curves.append(recorder.curve)
        callbacks = _compat.deepcopy_callbacks(self, callbacks or []) + [
            recorder, _FailOnNonFiniteLoss()]
        pruning = None
        if self.pruner is not None:
            pruning = PruningCallback(self.oracle, trial.trial_id, objective.name,
                                      objective.direction, fold=len(curves) - 1)
            callbacks.append(pruning)
        if not self.cv:  # KerasTuner's best-epoch checkpoint (get_best_models, Hyperband)
            callbacks.append(_compat.save_best_epoch(
                objective, _compat.checkpoint_file(self, trial.trial_id)))
        self.hypermodel.fit(hp, model, *train, validation_data=validation, epochs=epochs,
                            callbacks=callbacks, **fit_kwargs)
        if not self.cv:
            _compat.save_build_config(self, trial.trial_id, model)
        value = _best(recorder.curve, objective.direction, objective.name)
        return value, recorder.curve, bool(pruning is not None and pruning.pruned)

    def _writer(self, trial):
        if not self.tensorboard:
            return None
        from kerastrain.tensorboard import SummaryWriter

        return SummaryWriter(os.path.join(self.project_dir, "tensorboard",
                                          f"trial_{trial.trial_id}"))

    def _write_hparams(self, trial, score):
        if not self.tensorboard:
            return
        from kerastrain.tensorboard import SummaryWriter

        values = {k: v for k, v in trial.hyperparameters.values.items()
                  if not k.startswith("tuner/")}
        directory = os.path.join(self.project_dir, "tensorboard", f"trial_{trial.trial_id}")
        with SummaryWriter(directory) as writer:
            writer.scalar("score", score, step=0, run=None)
            writer.hparams(values, metrics=("score",), run=None, trial_id=trial.trial_id)


def _best(curve, direction, name):
    if not curve:  # FatalValueError: KerasTuner stops the search instead of retrying
        raise keras_tuner.errors.FatalValueError(str(_validation.argument_error(
            "objective", "be a metric that fit() reports", name,
            "Use a name from the fit logs, e.g. 'val_accuracy' or 'val_loss'.")))
    return float(np.max(curve) if direction == "max" else np.min(curve))


def _mean_curve(curves):
    if not curves:
        return []
    length = min(len(c) for c in curves)
    return [float(np.mean([c[i] for c in curves])) for i in range(length)]


def _tuner_class(name):
    base = keras_tuner.Hyperband if name == "hyperband" else keras_tuner.Tuner
    return _compat.mixin_class(f"Kerastrain{base.__name__}", KerastrainTunerMixin, base)


def create_tuner(tuner, hypermodel, objective="val_accuracy", direction=None, max_trials=10,
                 max_epochs=10, cv=0, pruner=None, seed=1337, directory="kerastrain_tune",
                 project_name="search", overwrite=False, tensorboard=True, time_limit=None,
                 progress=None, vectorize=False):
    """KerasTuner's ``tuner`` with kerastrain's CV, pruning, results and resume.

    Args:
        tuner: ``"random"``, ``"grid"``, ``"bayesian"`` or ``"hyperband"``.
        hypermodel: a `keras_tuner.HyperModel` (e.g. `MLPHyperModel`) or a
            ``build(hp)`` function returning a compiled model.
        objective: the metric to optimize, as named in the ``fit`` logs.
        direction: ``"min"`` / ``"max"``; default inferred from ``objective``.
        max_trials: number of trials (for Hyperband: an upper bound).
        max_epochs: epochs per trial (Hyperband's maximum).
        cv: 0 for hold-out validation, or ``k >= 2`` folds.
        pruner: ``None`` or a `MedianStoppingPruner`.
        seed: seeds the oracle and every trial's model.
        directory, project_name: where trials, ``results.csv`` and TensorBoard
            runs go; re-running with the same values resumes the search.
        overwrite: start afresh instead of resuming.
        tensorboard: write one TensorBoard run per trial plus HParams.
        time_limit: seconds after which no new trial starts (``None``: no limit).
        progress: an object with ``start_trial/advance/end_trial`` (the CLI's
            rich progress bar), or ``None``.
        vectorize: ``False`` (one trial at a time), ``"auto"`` or an integer K:
            train up to K trials of an `MLPHyperModel` as one compiled program
            on JAX or TensorFlow, or of a ``build(hp)`` model on JAX (see
            `kerastrain.tuning._vectorized`); where that cannot
            apply the search runs one trial at a time and says why once.

    Returns a tuner whose ``search(x, y, validation_data=..., epochs=...)``
    runs the search.
    """
    from kerastrain.tuning._pruning import MedianStoppingPruner
    from kerastrain.tuning._spaces import hypermodel_from_function

    _validation.check_one_of("tuner", tuner, TUNERS)
    _validation.check_type("objective", objective, str, "a metric name (str)")
    direction = infer_direction(objective) if direction is None else direction
    _validation.check_one_of("direction", direction, ("min", "max"))
    max_trials = _validation.check_integer("max_trials", max_trials, minimum=1)
    max_epochs = _validation.check_integer("max_epochs", max_epochs, minimum=1)
    cv = _cv.check_cv(cv)
    if cv and tuner == "hyperband":
        raise _validation.argument_error(
            "cv", "be 0 with tuner='hyperband'", cv,
            "Hyperband resumes models across rounds from one checkpoint; use another tuner "
            "for k-fold cross-validation.")
    if pruner is not None:
        _validation.check_type("pruner", pruner, MedianStoppingPruner,
                               "None or a MedianStoppingPruner")
    seed = _validation.check_integer("seed", seed, minimum=0)
    if time_limit is not None:
        time_limit = _validation.check_positive("time_limit", time_limit)
    hypermodel = hypermodel_from_function(hypermodel)
    kt_objective = keras_tuner.Objective(objective, direction)
    oracle = _oracle(tuner, kt_objective, max_trials, max_epochs, seed, pruner)
    cls = _tuner_class(tuner)
    instance = _compat.tuner_with_oracle(cls, oracle, hypermodel=hypermodel,
                                         directory=directory, project_name=project_name,
                                         overwrite=overwrite)
    instance._setup(cv, pruner, seed, tensorboard, progress, time_limit)
    instance.vectorize = _vectorized.check_vectorize(vectorize)
    instance.max_epochs = max_epochs
    _results.atomic_write_json(os.path.join(instance.project_dir, _results.META_FILE), {
        "objective": objective, "direction": direction, "tuner": tuner, "cv": cv,
        "max_trials": max_trials, "max_epochs": max_epochs, "seed": seed,
    })
    return instance


def _check_validation_data(validation_data):
    if validation_data is None:
        raise _validation.argument_error(
            "validation_data", "be given when cv=0", None,
            "Pass validation_data=(x_val, y_val) or create the tuner with cv >= 2.")


def search(tuner, x, y, validation_data=None, epochs=None, report=None, **fit_kwargs):
    """Run (or resume) ``tuner``'s search quietly; returns the project directory.

    ``report``: called with one line when a tuner created with ``vectorize`` must
    run trials one at a time (default: a `UserWarning`).
    """
    if not tuner.cv:
        _check_validation_data(validation_data)
    elif validation_data is not None:
        raise _validation.argument_error(
            "validation_data", "be None when cv >= 2", "(x_val, y_val)",
            "Cross-validation makes its own validation folds from x and y; pass all training "
            "data as x, y.")
    epochs = tuner.max_epochs if epochs is None else epochs
    fit_kwargs.setdefault("verbose", 0)
    if report is None:
        def report(line):
            warnings.warn(f"kerastrain: {line}", stacklevel=3)

    members, reason = _vectorized.plan(tuner, fit_kwargs)
    tuner.vectorize_members, tuner.vectorize_reason = members, reason
    if reason is not None:
        report(reason)
    if members:
        _vectorized.search(tuner, x, y, validation_data, epochs, members, report,
                           verbose=fit_kwargs["verbose"])
    else:
        tuner.search(x, y, validation_data=validation_data, epochs=epochs, **fit_kwargs)
    _results.write_results(tuner.project_dir)
    return tuner.project_dir
