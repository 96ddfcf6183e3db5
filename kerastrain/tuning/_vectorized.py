"""The vectorized trial executor: KerasTuner decides, groups of trials train as one program.

`search` replaces KerasTuner's one-trial-at-a-time loop for the chapter's MLP
space on JAX: it takes up to K trials from the oracle at once (each under its
own member tuner id, so KerasTuner's bookkeeping and the chief/worker mode
work unchanged), groups them by what cannot share a program (batch size, and
for Hyperband the epochs of the round), and trains each group with
`GroupTrainer`. Each member then lives its own trial's life: per-epoch
objective values reported to the oracle, the median stopping rule, a NaN/inf
loss failing only that member, its TensorBoard run and HParams row, its
best-epoch checkpoint, its ``results.csv`` row. A group killed mid-way leaves
its unfinished members RUNNING, and the oracle re-runs exactly those on resume.

`plan` says whether a search vectorizes and with how many members, or why not
(one line; the search then runs trials one at a time).
"""

from __future__ import annotations

import os
import time

import numpy as np

from kerastrain import _validation

AUTO_MEMBERS = 64
MEMORY_SHARE = 0.25  # of the available memory, for all members' state together


def check_vectorize(value, name="vectorize"):
    """``"auto"``, ``False`` or an integer K >= 1 (``True`` means ``"auto"``)."""
    if value is True or value == "auto":
        return "auto"
    if value is False or value is None:
        return False
    if isinstance(value, str) and value.lower() in ("off", "false", "no"):
        return False
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _validation.type_error(name, '"auto", false or an integer >= 1', value)
    if value < 1:
        raise _validation.argument_error(
            name, 'be "auto", false or an integer >= 1 (members per program)', value,
            "Use false to train trials one at a time.")
    return int(value)


def plan(tuner, fit_kwargs=None):
    """``(members, reason)``: K members per group, or 0 and why the search runs sequentially."""
    import keras

    from kerastrain.tuning._spaces import MLPHyperModel

    requested = getattr(tuner, "vectorize", False)
    if not requested:
        return 0, None
    if keras.config.backend() != "jax":
        return 0, ("vectorized trials need the JAX backend (pip install -e \".[jax]\" and "
                   "KERAS_BACKEND=jax); running trials one at a time")
    if not isinstance(tuner.hypermodel, MLPHyperModel):
        return 0, ("vectorized trials cover the built-in MLP space (model.build = \"mlp\"); "
                   "a user build function runs trials one at a time")
    if tuner.cv:
        return 0, "search.cv > 0 runs trials one at a time (folds are not members yet)"
    if fit_kwargs and fit_kwargs.get("callbacks"):
        return 0, "user callbacks need model.fit: running trials one at a time"
    members = _auto_members(tuner) if requested == "auto" else requested
    return max(1, min(members, tuner.oracle.max_trials or members)), None


def _auto_members(tuner):
    """K from the memory one member needs and the memory available (capped at 64)."""
    from kerastrain.tuning import _members

    shape = _members.group_shape(tuner.hypermodel, max(tuner.hypermodel.batch_sizes), 1)
    widest = shape.pieces * shape.width
    params = (shape.input_dim * widest + (shape.depth - 1) * shape.width * widest
              + shape.width * shape.outputs)
    activations = shape.batch_size * widest * shape.depth * 8 + 1024 * widest * shape.depth
    per_member = 4 * (7 * params + activations)  # params, grads, 2 slots, best, temporaries
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        available = 2 ** 31
    return int(max(1, min(AUTO_MEMBERS, MEMORY_SHARE * available // per_member)))


def search(tuner, x, y, validation_data, epochs, members, verbose=0):
    """Run (or resume) ``tuner``'s search in groups of up to ``members`` trials."""
    from keras_tuner.src.distribute import utils as dist_utils

    if not dist_utils.has_chief_oracle() or dist_utils.is_chief_oracle():
        tuner.oracle.verbose = verbose  # as KerasTuner's search does
    tuner.on_search_begin()
    stopped = False
    while not stopped:
        trials, stopped = _take_trials(tuner, members)
        if not trials:
            break
        for group in _groups(tuner, trials, epochs):
            _run_group(tuner, group, x, y, validation_data, epochs)
    _release_member_ids(tuner, members)
    tuner.on_search_end()


def _member_id(tuner, index):
    return f"{tuner.tuner_id}/member_{index}"


def _take_trials(tuner, members):
    """Up to ``members`` new (or retried) trials; True once the oracle said stop."""
    from keras_tuner.src.engine import trial as trial_module

    trials = []
    for index in range(members):
        tuner.pre_create_trial()
        trial = tuner.oracle.create_trial(_member_id(tuner, index))
        if trial.status == trial_module.TrialStatus.STOPPED:
            return trials, True
        if trial.status == trial_module.TrialStatus.IDLE:  # Hyperband: round not finished
            if trials:
                break
            time.sleep(0.5)
            continue
        tuner.on_trial_begin(trial)
        trials.append(trial)
    return trials, False


def _release_member_ids(tuner, members):
    """Member ids the oracle still counts as clients get their STOPPED answer."""
    ids = getattr(tuner.oracle, "tuner_ids", None)
    for index in range(members):
        member_id = _member_id(tuner, index)
        if ids is None or member_id in ids:
            trial = tuner.oracle.create_trial(member_id)
            if trial.status == "RUNNING":  # another worker's failed trial came back: run it
                _run_group(tuner, [trial], *tuner._vectorized_data)


def _epochs(trial, epochs):
    values = trial.hyperparameters.values
    if "tuner/epochs" in values:
        return values["tuner/initial_epoch"], values["tuner/epochs"]
    return 0, epochs


def _groups(tuner, trials, epochs):
    """Trials that share a program: same batch size and epochs to run (a Hyperband
    round), and maxout apart from the other activations (two affine pieces per unit
    would double every other member's matmul work)."""
    from kerastrain.tuning import _members

    groups = {}
    for trial in trials:
        spec = _members.member_spec(tuner.hypermodel, trial.hyperparameters)
        key = (spec.batch_size, _epochs(trial, epochs), spec.activation == "maxout")
        groups.setdefault(key, []).append((trial, spec))
    return list(groups.values())


class _Member:
    """One trial's life inside a group."""

    def __init__(self, tuner, trial, spec, index):
        self.trial, self.spec, self.index = trial, spec, index
        self.curve, self.pruned, self.failed = [], False, None
        self.best_epoch, self.started = 0, time.perf_counter()
        self.writer = tuner._writer(trial)

    @property
    def live(self):
        return not (self.pruned or self.failed)


def _build_member_model(tuner, hp):
    """The member's model exactly as the sequential path builds it (same seeds).

    As KerasTuner's ``_try_build`` (which the sequential path calls) but without
    its ``gc.collect()`` per model (most of a small model's build time): the group
    holds every member's model anyway.
    """
    import keras

    keras.utils.set_random_seed(tuner.seed)
    keras.backend.clear_session(free_memory=False)
    return tuner._build_hypermodel(hp)


def _run_group(tuner, group, x, y, validation_data, epochs):
    from kerastrain.tuning import _members
    from kerastrain.tuning._group import GroupTrainer

    tuner._vectorized_data = (x, y, validation_data, epochs)
    size = tuner.vectorize_members
    trials = [trial for trial, _ in group]
    specs = [spec for _, spec in group]
    initial_epoch, last_epoch = _epochs(trials[0], epochs)
    started = time.perf_counter()
    models = [_build_member_model(tuner, trial.hyperparameters) for trial in trials]
    built = time.perf_counter()
    shape = _members.group_shape(tuner.hypermodel, specs[0].batch_size, size,
                                 maxout=specs[0].activation == "maxout")
    trainer = GroupTrainer(shape, specs, models, tuner.hypermodel.decay_steps, tuner.seed)
    trainer.set_data(x, y, validation_data)
    members = [_Member(tuner, trial, spec, i) for i, (trial, spec) in enumerate(group)]
    objective = tuner.oracle.objective
    progress = tuner.progress
    if progress is not None and hasattr(progress, "start_group"):
        progress.start_group([t.trial_id for t in trials], last_epoch - initial_epoch)
    timing = {"members": len(trials), "padded_to": size, "batch_size": shape.batch_size,
              "maxout": shape.pieces > 1, "build_seconds": built - started,
              "state_bytes_per_member": trainer.state_bytes_per_member(), "epoch_seconds": []}
    if not hasattr(tuner, "vectorized_groups"):
        tuner.vectorized_groups = []
    tuner.vectorized_groups.append(timing)
    try:
        for epoch in range(initial_epoch, last_epoch):
            tick = time.perf_counter()
            logs = trainer.train_epoch()
            timing["epoch_seconds"].append(time.perf_counter() - tick)
            if objective.name not in logs:
                from kerastrain.tuning._tuner import _best

                _best([], objective.direction, objective.name)  # the one-line error
            improved = _record_epoch(tuner, members, logs, epoch, objective)
            trainer.keep_best(improved)
            if progress is not None and hasattr(progress, "group_epoch"):
                progress.group_epoch(objective.name, _best_so_far(members, objective),
                                     sum(m.pruned for m in members),
                                     sum(bool(m.failed) for m in members))
            for member in members:
                if not member.live and not getattr(member, "ended", False):
                    _end_member(tuner, trainer, member, initial_epoch)
            if not any(m.live for m in members):
                break
        for member in members:
            if not getattr(member, "ended", False):
                _end_member(tuner, trainer, member, initial_epoch)
    finally:
        for member in members:
            if member.writer is not None:
                member.writer.close()


def _best_so_far(members, objective):
    values = [v for m in members if not m.failed for v in m.curve]
    if not values:
        return None
    return max(values) if objective.direction == "max" else min(values)


def _record_epoch(tuner, members, logs, epoch, objective):
    """Per-member logs: failure, curve, TensorBoard, oracle report, pruning; the improved mask."""
    from kerastrain.tuning import _results

    improved = np.zeros(len(members), bool)
    completed = None
    for member in members:
        if not member.live:
            continue
        values = {key: float(value[member.index]) for key, value in logs.items()}
        if not np.isfinite(values["loss"]):
            member.failed = f"training loss became {values['loss']} at epoch {epoch + 1}"
            continue
        value = values[objective.name]
        better = (not member.curve or (value > max(member.curve) if objective.direction == "max"
                                       else value < min(member.curve)))
        member.curve.append(value)
        if better:
            improved[member.index], member.best_epoch = True, epoch
        if member.writer is not None:
            for key, number in values.items():
                run = "validation" if key.startswith("val_") else "train"
                member.writer.scalar("epoch_" + key.removeprefix("val_"), number, epoch, run=run)
        tuner.oracle.update_trial(member.trial.trial_id, {objective.name: value}, step=epoch)
        if tuner.pruner is not None and len(member.curve) > tuner.pruner.warmup_epochs:
            if completed is None:
                completed = _results.completed_curves(tuner.project_dir)
            member.pruned = tuner.pruner.should_stop(member.curve, completed,
                                                     objective.direction)
    return improved


def _end_member(tuner, trainer, member, initial_epoch):
    """Checkpoint, curve, HParams, oracle metrics and the trial's end, for one member."""
    from keras_tuner.src.engine import trial as trial_module

    from kerastrain.tuning import _results

    member.ended = True
    trial, objective = member.trial, tuner.oracle.objective
    trial_dir = os.path.join(tuner.project_dir, f"trial_{trial.trial_id}")
    os.makedirs(trial_dir, exist_ok=True)
    used = _used_names(member.spec, trial.hyperparameters)
    if member.failed:
        _results.write_curve(trial_dir, member.curve, False, tuner.tuner_id, initial_epoch,
                             used, failed=member.failed)
        trial.status = trial_module.TrialStatus.FAILED
        trial.message = f"NonFiniteLossError: {member.failed}"
        score = None
    else:
        model = trainer.member_model(member.index, best=True)
        model.save_weights(tuner._get_checkpoint_fname(trial.trial_id))
        _save_build_config(tuner, trial, model)
        _results.write_curve(trial_dir, member.curve, member.pruned, tuner.tuner_id,
                             initial_epoch, used)
        values = np.asarray(member.curve, np.float64)
        score = float(values.max() if objective.direction == "max" else values.min())
        metrics = {objective.name: score, "epochs": float(len(member.curve)),
                   "pruned": float(member.pruned),
                   "seconds": time.perf_counter() - member.started}
        tuner.oracle.update_trial(trial.trial_id, metrics, step=member.best_epoch)
        tuner._write_hparams(trial, score)
        trial.status = trial_module.TrialStatus.COMPLETED
    if tuner.progress is not None:
        tuner.progress.end_trial(trial.trial_id, score, member.pruned,
                                 **({"reason": member.failed} if member.failed else {}))
    tuner.on_trial_end(trial)


def _save_build_config(tuner, trial, model):
    import keras_tuner

    if keras_tuner.src.backend.config.multi_backend():
        keras_tuner.src.utils.save_json(tuner._get_build_config_fname(trial.trial_id),
                                        model.get_build_config())


def _used_names(spec, hp):
    """The hyperparameters the member's model reads (inactive ``units_i`` left out)."""
    names = set(hp.values) - {f"units_{i}" for i in range(spec.depth, 64)}
    return {name for name in names if not name.startswith("tuner/")}
