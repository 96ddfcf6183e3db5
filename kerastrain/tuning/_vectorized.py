"""The vectorized trial executor: KerasTuner decides, groups of trials train as one program.

`search` replaces KerasTuner's one-trial-at-a-time loop for the chapter's MLP
space on JAX and TensorFlow (and for a user's ``build(hp)`` on JAX): it takes up to K trials from the oracle at once (each under its
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

import contextlib
import os
import time

import numpy as np

from kerastrain import _compat, _validation

# Backends the chapter's MLP space trains vectorized on (`_group.mlp_program`); a user's
# build(hp) model vectorizes on JAX only (Keras's stateless JAX train step).
MLP_BACKENDS = ("jax", "tensorflow")
AUTO_MEMBERS = 64
DEFAULT_TRIALS = 64  # search.max_trials = 0 where trials vectorize ...
SEQUENTIAL_TRIALS = 8  # ... and where they run one at a time
MEMORY_SHARE = 0.25  # of the available memory, for all members' state together
SIDE_BY_SIDE = 2  # groups of one round whose epochs run at once (`_side_by_side`)
# model.fit arguments a vectorized search of a user's build(hp) honours (others: one at a time)
KERAS_FIT_ARGUMENTS = frozenset({"batch_size", "verbose"})


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


def vectorizes(config):
    """Whether a `kerastrain tune` config's search trains its trials vectorized."""
    import keras

    return bool(config["search"]["vectorize"]) and config["model"]["build"] == "mlp" \
        and keras.config.backend() in MLP_BACKENDS


def plan(tuner, fit_kwargs=None):
    """``(members, reason)``: K members per group, or 0 and why the search runs sequentially."""
    import keras

    from kerastrain.tuning._spaces import MLPHyperModel

    requested = getattr(tuner, "vectorize", False)
    if not requested:
        return 0, None
    backend = keras.config.backend()
    if backend not in MLP_BACKENDS:
        return 0, ("vectorized trials need the JAX or TensorFlow backend (KERAS_BACKEND=jax "
                   "or tensorflow); running trials one at a time")
    fit_kwargs = fit_kwargs or {}
    if fit_kwargs.get("callbacks"):
        return 0, "user callbacks need model.fit: running trials one at a time"
    tuner.vectorize_kind = "mlp" if isinstance(tuner.hypermodel, MLPHyperModel) else "keras"
    if tuner.vectorize_kind == "keras" and backend != "jax":
        return 0, ("a build(hp) model's trials vectorize on the JAX backend only (pip install "
                   "-e \".[jax]\" and KERAS_BACKEND=jax); running trials one at a time")
    if tuner.vectorize_kind == "keras":
        import keras_tuner

        if type(tuner.hypermodel).fit is not keras_tuner.HyperModel.fit:
            return 0, ("a hypermodel with its own fit() trains its way, one trial at a time; "
                       "vectorized trials run Keras's own train step")
        other = sorted(set(fit_kwargs) - KERAS_FIT_ARGUMENTS)
        if other:
            return 0, (f"model.fit arguments {other} are not vectorized: running trials one "
                       "at a time (vectorized trials take batch_size only)")
        tuner.vectorize_batch_size = int(fit_kwargs.get("batch_size") or 32)
    if requested == "auto":
        members = _auto_members(tuner) if tuner.vectorize_kind == "mlp" else AUTO_MEMBERS
    else:
        members = requested
    folds = max(1, tuner.cv)  # each trial is cv members (its folds)
    max_trials = getattr(tuner.oracle, "max_trials", None) or members  # (a chief's client)
    return max(1, min(members, max_trials * folds)), None


def _auto_members(tuner):
    """K from the memory one member needs and the memory available (capped at 64)."""
    from kerastrain.tuning import _buckets, _members

    shape = _members.group_shape(tuner.hypermodel, max(tuner.hypermodel.batch_sizes), 1)
    widest = shape.columns
    params = _buckets.flops_per_example(shape) // 6  # kernels: one multiply-add per weight
    activations = shape.batch_size * widest * shape.depth * 8 + 1024 * widest * shape.depth
    per_member = 4 * (7 * params + activations)  # params, grads, 2 slots, best, temporaries
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        available = 2 ** 31
    return int(max(1, min(AUTO_MEMBERS, MEMORY_SHARE * available // per_member)))


def search(tuner, x, y, validation_data, epochs, members, report, verbose=0):
    """Run (or resume) ``tuner``'s search in groups of up to ``members`` trials.

    With ``tuner.cv = k`` each trial is k members (its folds: same
    hyperparameters, each its own data), so a group takes ``members // k`` trials.
    """
    if not _compat.has_chief_oracle() or _compat.is_chief_oracle():
        tuner.oracle.verbose = verbose  # as KerasTuner's search does
    tuner.on_search_begin()
    data = _Data(tuner, x, y, validation_data, epochs)
    data.report = report
    per_round = max(1, members // max(1, tuner.cv))
    stopped = False
    while not stopped:
        trials, stopped = _take_trials(tuner, per_round)
        # The oracle has no trial left to give (random / Bayesian / grid at max_trials):
        # no later group can reuse this round's programs, so they hold no padded member.
        data.last_round = _remaining_trials(tuner.oracle) == 0
        if trials:
            _run_trials(tuner, trials, data)
        elif not stopped:  # Hyperband: other workers' trials end the round first
            time.sleep(0.5)
    _release_member_ids(tuner, per_round, data)
    tuner.on_search_end()


def _remaining_trials(oracle):
    """KerasTuner's ``Oracle.remaining_trials()`` (None: unbounded, or a chief's client)."""
    remaining = getattr(oracle, "remaining_trials", None)
    return remaining() if callable(remaining) else None


class _Data:
    """The search's data and, with cross-validation, its folds (the sequential path's)."""

    def __init__(self, tuner, x, y, validation_data, epochs):
        self.x, self.y, self.validation_data, self.epochs = x, y, validation_data, epochs
        self.folds = None
        self.last_round = False
        self.runner = None  # the executor the epochs of a round's groups run in
        # (GroupShape, fold rows) -> its `_group.programs()`, compiled or being compiled
        self.compiled = {}
        if tuner.cv:
            from kerastrain.tuning import _cv

            self.folds = _cv.kfold_indices(np.asarray(y), tuner.cv, seed=tuner.seed)


def _member_id(tuner, index):
    return f"{tuner.tuner_id}/member_{index}"


def _take_trials(tuner, count):
    """Up to ``count`` new (or retried) trials; True once the oracle said stop."""
    from keras_tuner.engine import trial as trial_module

    trials = []
    for index in range(count):
        tuner.pre_create_trial()
        trial = tuner.oracle.create_trial(_member_id(tuner, index))
        if trial.status == trial_module.TrialStatus.STOPPED:
            return trials, True
        if trial.status == trial_module.TrialStatus.IDLE:  # Hyperband: round not finished
            break
        tuner.on_trial_begin(trial)
        trials.append(trial)
    return trials, False


def _release_member_ids(tuner, count, data):
    """Member ids the oracle still counts as clients get their STOPPED answer."""
    ids = getattr(tuner.oracle, "tuner_ids", None)
    for index in range(count):
        member_id = _member_id(tuner, index)
        if ids is None or member_id in ids:
            trial = tuner.oracle.create_trial(member_id)
            if trial.status == "RUNNING":  # another worker's failed trial came back: run it
                tuner.on_trial_begin(trial)
                _run_trials(tuner, [trial], data)


def _epochs(trial, epochs):
    values = trial.hyperparameters.values
    if "tuner/epochs" in values:
        return values["tuner/initial_epoch"], values["tuner/epochs"]
    return 0, epochs


class _Trial:
    """One trial's folds (one member without cross-validation) and their results."""

    def __init__(self, tuner, trial, folds):
        from kerastrain.tuning import _members

        self.trial, self.folds = trial, folds
        self.spec = (_members.member_spec(tuner.hypermodel, trial.hyperparameters)
                     if getattr(tuner, "vectorize_kind", "mlp") == "mlp" else None)
        self.curves, self.best_epoch = {}, 0
        self.pruned, self.failed, self.ended = False, None, False
        self.started = time.perf_counter()
        self.writer = tuner._writer(trial)

    @property
    def live(self):
        return not (self.pruned or self.failed or self.ended)


class _Member:
    """One fold of one trial (the trial itself without cross-validation) in a group."""

    def __init__(self, record, fold, index):
        self.record, self.fold, self.index = record, fold, index
        self.curve, self.best_epoch = [], 0
        self.prefix = "" if fold is None else f"fold_{fold}/"

    @property
    def live(self):
        return self.record.live


def _run_trials(tuner, trials, data):
    """Train ``trials`` (their folds as members) in as few groups as can share a program.

    A group shares the batch size, the epochs to run (a Hyperband round) and, under
    cross-validation, the number of training rows of its folds; `_buckets.plan` then
    splits it into programs by width, depth and maxout where the padding would cost
    more than another compile.
    """
    with _one_blas_thread():
        _run_trials_here(tuner, trials, data)


def _one_blas_thread():
    """NumPy's BLAS/LAPACK held to one thread while a round runs, restored after.

    Groups compile and train in threads of their own (XLA's pools) while this thread
    builds the members' models, so every core is busy; a multi-threaded OpenBLAS call
    meanwhile (the `Orthogonal` initializer's SVD) spins its threads against them:
    on the 2-core CPU the 34 SVDs of the digits search took 2.7 s instead of 0.08 s.
    No program of the search uses NumPy's BLAS otherwise (XLA brings its own).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _run_trials_here(tuner, trials, data):
    folds = data.folds or [None]
    records = [_Trial(tuner, trial, len(folds)) for trial in trials]
    if getattr(tuner, "vectorize_kind", "mlp") == "keras":
        try:
            _run_keras_trials(tuner, records, folds, data)
        finally:
            for record in records:
                if record.writer is not None:
                    record.writer.close()
        return
    groups = {}
    for record in records:
        first, last = _epochs(record.trial, data.epochs)
        for fold, split in enumerate(folds):
            rows = None if split is None else len(split[0])
            key = (record.spec.batch_size, first, last, rows)
            groups.setdefault(key, []).append((record, None if split is None else fold))
    # Each group's programs compile in background threads (`_Compiler`) while this thread
    # builds the members' Keras models and trains the groups before it.
    from concurrent.futures import ThreadPoolExecutor

    plans = []
    for (batch_size, first, last, rows), units in groups.items():
        for shape, bucket in _plan_buckets(tuner, data, batch_size, first, last, rows, units):
            plans.append(((shape, rows), [units[i] for i in bucket], first, last))
    with ThreadPoolExecutor(max_workers=2) as executor, \
            ThreadPoolExecutor(max_workers=SIDE_BY_SIDE) as runner:
        compiler = _Compiler(tuner, data, executor)
        for key, units, _, _ in plans:
            if key not in data.compiled:
                data.compiled[key] = compiler.submit(key, units)
        data.runner = runner
        try:
            _side_by_side([_run_fitting(tuner, key, units, data, first, last)
                           for key, units, first, last in plans],
                          in_turn=tuner.pruner is not None)
        finally:
            data.runner = None
            for record in records:
                if record.writer is not None:
                    record.writer.close()


def _side_by_side(groups, width=None, in_turn=False):
    """Run ``groups`` (generators, one per group: `_run_fitting`), ``width`` at a time.

    A group's generator yields each epoch it started, a `Future` of its logs: the epoch
    runs in a thread of its own (`_Data.runner`; XLA releases the GIL), so while it
    computes, this thread records another group's finished epoch, builds the next
    group's members or starts another group's epoch, and XLA runs two groups' programs
    at once (on the 2-core CPU one group's program keeps little more than one core
    busy, its steps being chains of small kernels). Everything but the epochs' compute
    (the oracle, the pruner, checkpoints, results, TensorBoard) runs in this thread.

    The group resumed next is the first whose epoch has finished; with ``in_turn``
    (a pruner: its median rule reads the trials that ended before, so the order of the
    reports must not depend on timing) the groups are resumed strictly in turn.
    """
    width = width or SIDE_BY_SIDE
    waiting, running = list(groups), []  # running: [group, its started epoch], in turn order
    while waiting or running:
        while waiting and len(running) < width:
            group = waiting.pop(0)
            started = _resume(group)
            if started is not _DONE:
                running.append([group, started])
        if not running:
            continue
        group, _ = running.pop(0 if in_turn else _first_finished(running))
        started = _resume(group)
        if started is not _DONE:
            running.append([group, started])  # its next turn comes after the others'


_DONE = object()


def _resume(group):
    """Run ``group`` to its next started epoch (a `Future`), or `_DONE`."""
    try:
        return next(group)
    except StopIteration:
        return _DONE


def _first_finished(running):
    """Index of the first of ``running``'s ``[group, started]`` whose epoch has finished."""
    from concurrent.futures import FIRST_COMPLETED, wait

    wait([started for _, started in running], return_when=FIRST_COMPLETED)
    return next(index for index, (_, started) in enumerate(running) if started.done())


def _plan_buckets(tuner, data, batch_size, first, last, rows, units):
    """`_buckets.plan` for one group: its members' shapes, epochs and rows."""
    from kerastrain.tuning import _buckets as buckets
    from kerastrain.tuning._group import mlp_program

    if rows is None:
        train_rows, validation_rows = len(data.x), len(data.validation_data[0])
    else:
        train_rows = rows
        validation_rows = max(len(data.folds[fold][1]) for _, fold in units)
    work = buckets.Work(train_rows=train_rows, validation_rows=validation_rows,
                        epochs=last - first, platform=mlp_program().platform(),
                        limit=tuner.vectorize_members, last_round=data.last_round)
    compiled = {key[0] for key in data.compiled if isinstance(key, tuple) and key[1] == rows}
    return buckets.plan(tuner.hypermodel, [record.spec for record, _ in units], batch_size,
                        work, compiled)


def _run_fitting(tuner, key, units, data, first, last):
    """`_run_group`, halving a group that does not fit in memory (one line says so).

    A generator for `_side_by_side` (it yields after starting each epoch)."""
    import dataclasses

    units = [(r, f) for r, f in units if r.live]
    if not units:
        return
    try:
        yield from _run_group(tuner, key, units, data, first, last)
    except Exception as error:  # XLA's RESOURCE_EXHAUSTED, or the host's MemoryError
        if len(units) == 1 or not _out_of_memory(error):
            raise
        shape, rows = key
        half = dataclasses.replace(shape, members=max(1, shape.members // 2))
        for part in _halves(tuner, data, units, error, half.members):
            yield from _run_fitting(tuner, (half, rows), part, data, first, last)


def _halves(tuner, data, units, error, limit):
    """A group that did not fit in memory, as two halves to run again (one line says so).

    ``units``: the group's ``(record, ...)`` tuples; their trials' curves start over.
    """
    data.report(f"a group of {len(units)} trials does not fit in memory ({_first_line(error)});"
                f" running it as groups of at most {limit}")
    tuner.vectorize_members = min(tuner.vectorize_members, limit)
    middle = -(-len(units) // 2)
    parts = (units[:middle], units[middle:])
    for part in parts:
        for unit in part:
            unit[0].curves.clear()
    return parts


def _out_of_memory(error):
    """XLA's ``RESOURCE_EXHAUSTED``, TensorFlow's ``ResourceExhaustedError`` (OOM) or the
    host's `MemoryError`."""
    return isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in str(error) \
        or type(error).__name__ == "ResourceExhaustedError"


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:120]


class _Compiler:
    """Compiles each group's `_group.programs()` as separate jobs in background threads
    (XLA releases the GIL), in the order the groups run: the first group's train and
    evaluate programs compile side by side while this thread builds its members.

    The jobs of one group share a placeholder trainer (zeros of the group's shapes),
    dropped after its last job.
    """

    def __init__(self, tuner, data, executor):
        import threading

        self.tuner, self.data, self.executor = tuner, data, executor
        self._lock = threading.Lock()
        self._placeholders, self._left = {}, {}

    def submit(self, key, units):
        """``key``'s programs, one `Future` each (in `_group.programs()` order)."""
        from kerastrain.tuning._group import programs

        names = programs()
        self._left[key] = len(names)
        return tuple(self.executor.submit(self._compile, key, units, name) for name in names)

    def _compile(self, key, units, name):
        try:
            with self._lock:
                if key not in self._placeholders:
                    self._placeholders[key] = self._placeholder(key[0], units)
                placeholder = self._placeholders[key]
            return placeholder.compile(name)
        finally:
            with self._lock:
                self._left[key] -= 1
                if not self._left[key]:
                    self._placeholders.pop(key, None)

    def _placeholder(self, shape, units):
        from kerastrain.tuning import _members
        from kerastrain.tuning._group import GroupTrainer

        placeholder = GroupTrainer(shape, [_members.placeholder_spec(shape)], [None],
                                   self.tuner.hypermodel.decay_steps, self.tuner.seed)
        _set_data(placeholder, self.data, units)
        return placeholder


def _set_data(trainer, data, units):
    if data.folds is None:
        trainer.set_data(data.x, data.y, data.validation_data)
    else:
        trainer.set_data(data.x, data.y, rows=[data.folds[fold] for _, fold in units])


def _build_member_model(tuner, hp):
    """The member's model exactly as the sequential path builds it (same seeds).

    As KerasTuner's ``_try_build`` (which the sequential path calls) but without
    its ``gc.collect()`` per model (most of a small model's build time): the group
    holds every member's model anyway. Nor does it touch TensorFlow's global state
    (its seed, its eager caches): other groups' epochs run meanwhile in threads, and
    the members' initial weights and dropout seeds are drawn by NumPy and Python.
    """
    _compat.set_random_seed(tuner.seed, tensorflow=False)
    _compat.clear_keras_state()
    return _compat.build_hypermodel(tuner, hp)


def _run_group(tuner, key, units, data, first_epoch, last_epoch):
    """Train one group. ``key``: its `GroupShape`, padded to a power of two members (not
    to K: a small group does not pay for K members, and groups of similar sizes share
    one program), and its folds' training rows (cross-validation)."""
    from kerastrain.tuning._group import GroupTrainer

    shape = key[0]
    size = shape.members
    started = time.perf_counter()
    models = [_build_member_model(tuner, record.trial.hyperparameters) for record, _ in units]
    built = time.perf_counter()
    specs = [record.spec for record, _ in units]
    trainer = GroupTrainer(shape, specs, models, tuner.hypermodel.decay_steps, tuner.seed)
    _set_data(trainer, data, units)
    trainer.compiled = data.compiled.get(key)
    timing = {"members": len(units), "padded_to": size, "batch_size": shape.batch_size,
              "maxout": "maxout" in shape.activations, "build_seconds": built - started,
              "state_bytes_per_member": trainer.state_bytes_per_member(), "epoch_seconds": []}
    yield from _train_group(tuner, trainer, units, first_epoch, last_epoch, timing,
                            data.runner)


def _train_group(tuner, trainer, units, first_epoch, last_epoch, timing, runner=None):
    """The epochs of one group: per-member records, pruning, failures, checkpoints.

    A generator for `_side_by_side`: with a ``runner`` (an executor) each epoch runs
    there and the generator yields its `Future`; without, epochs run here, one by one.
    """
    members = [_Member(record, fold, i) for i, (record, fold) in enumerate(units)]
    if not hasattr(tuner, "vectorized_groups"):
        tuner.vectorized_groups = []
    tuner.vectorized_groups.append(timing)
    objective, progress = tuner.oracle.objective, tuner.progress
    bar = None
    if progress is not None and hasattr(progress, "start_group"):
        bar = progress.start_group(sorted({r.trial.trial_id for r, _ in units}),
                                   last_epoch - first_epoch)
    if objective.name not in trainer.log_names():  # the one-line error, before training
        from kerastrain.tuning._tuner import _best

        _best([], objective.direction, objective.name)
    for epoch in range(first_epoch, last_epoch):
        tick = time.perf_counter()
        if runner is not None:
            started = runner.submit(trainer.train_epoch)
            yield started  # other groups run Python (or start their epoch) while it computes
            logs = started.result()
        else:
            logs = trainer.train_epoch()
        # wall seconds from start to logs (with groups side by side: overlapping)
        timing["epoch_seconds"].append(time.perf_counter() - tick)
        trainer.keep_best(_record_epoch(tuner, members, logs, epoch, objective))
        if progress is not None and hasattr(progress, "group_epoch"):
            records = {m.record for m in members}
            progress.group_epoch(objective.name, _best_so_far(members, objective),
                                 sum(r.pruned for r in records),
                                 sum(bool(r.failed) for r in records), group=bar)
        _finish(tuner, trainer, members, first_epoch, final=False)
        if not any(m.live for m in members):
            break
    _finish(tuner, trainer, members, first_epoch, final=True)


def _run_keras_trials(tuner, records, folds, data):
    """A user's ``build(hp)`` trials, each member's model built as the sequential path
    builds it, grouped by program (`_backend._vectorized_keras.signature`: members whose
    train steps differ only in variable values, such as a float learning rate), by the
    Hyperband round's epochs and by the folds' row counts."""
    import keras

    from kerastrain._backend import _vectorized_keras as program
    from kerastrain.tuning._keras_group import KerasGroupTrainer

    batch_size = tuner.vectorize_batch_size
    x, y = np.asarray(data.x), np.asarray(data.y)
    groups = {}
    started = time.perf_counter()
    for record in records:
        first, last = _epochs(record.trial, data.epochs)
        for fold, split in enumerate(folds):
            keras.backend.clear_session(free_memory=False)  # as run_trial, then _fit_split
            _compat.set_random_seed(tuner.seed)
            model = _compat.build_hypermodel(tuner, record.trial.hyperparameters)
            order_state = np.random.get_state()  # what fit's shuffling starts from
            KerasGroupTrainer.prepare(model, x, y, batch_size)
            signature = program.signature(model, x[:batch_size], y[:batch_size])
            rows = None if split is None else (len(split[0]), len(split[1]))
            groups.setdefault((signature, first, last, rows), []).append(
                (record, None if split is None else fold, model, order_state))
    build_seconds = time.perf_counter() - started
    for (signature, first, last, _), units in groups.items():
        for start in range(0, len(units), tuner.vectorize_members):
            _run_keras_group(tuner, signature, units[start:start + tuner.vectorize_members],
                             data, first, last, build_seconds)
            build_seconds = 0.0


def _run_keras_group(tuner, signature, units, data, first_epoch, last_epoch, build_seconds):
    """Train one group of user models; a group that does not fit in memory is halved."""
    from kerastrain.tuning._keras_group import KerasGroupTrainer

    units = [unit for unit in units if unit[0].live]
    if not units:
        return
    try:
        trainer = KerasGroupTrainer([u[2] for u in units], [u[3] for u in units],
                                    tuner.vectorize_batch_size, data.compiled.get(signature))
        _set_data(trainer, data, [(u[0], u[1]) for u in units])
        data.compiled[signature] = trainer.functions
        timing = {"members": len(units), "padded_to": len(units),
                  "batch_size": tuner.vectorize_batch_size, "program": signature[:12],
                  "build_seconds": build_seconds,
                  "state_bytes_per_member": trainer.state_bytes_per_member(),
                  "epoch_seconds": []}
        for _ in _train_group(tuner, trainer, [(u[0], u[1]) for u in units], first_epoch,
                              last_epoch, timing):
            pass  # user models: one group at a time
    except Exception as error:  # XLA's RESOURCE_EXHAUSTED, or the host's MemoryError
        if len(units) == 1 or not _out_of_memory(error):
            raise
        for part in _halves(tuner, data, units, error, -(-len(units) // 2)):
            _run_keras_group(tuner, signature, part, data, first_epoch, last_epoch, 0.0)


def _best_so_far(members, objective):
    values = [v for m in members if not m.record.failed for v in m.curve]
    if not values:
        return None
    return max(values) if objective.direction == "max" else min(values)


def _record_epoch(tuner, members, logs, epoch, objective):
    """Per-member logs: failure, curve, TensorBoard, oracle report, pruning; the improved mask.

    Under cross-validation a fold that is pruned or fails ends its whole trial (as
    the sequential path stops a trial at its first pruned or failed fold).
    """
    improved = np.zeros(len(members), bool)
    # The epoch's reports of running members stay in memory (KerasTuner writes the trial's
    # file on each); a remote oracle (a worker's client) writes on the chief's side.
    in_memory = getattr(tuner.oracle, "running_reports_in_memory", contextlib.nullcontext)
    with in_memory():
        for member in members:
            _record_member_epoch(tuner, member, logs, epoch, objective, improved)
    return improved


def _record_member_epoch(tuner, member, logs, epoch, objective, improved):
    """`_record_epoch` for one member (``improved`` set in place)."""
    from kerastrain.tuning import _pruning

    record = member.record
    if not member.live:
        return
    values = {key: float(value[member.index]) for key, value in logs.items()}
    if not np.isfinite(values["loss"]):
        record.failed = f"training loss became {values['loss']} at epoch {epoch + 1}"
        return
    value = values[objective.name]
    better = (not member.curve or (value > max(member.curve) if objective.direction == "max"
                                   else value < min(member.curve)))
    member.curve.append(value)
    if better:
        improved[member.index], member.best_epoch = True, epoch
    if record.writer is not None:
        for key, number in values.items():
            run = member.prefix + ("validation" if key.startswith("val_") else "train")
            record.writer.scalar("epoch_" + key.removeprefix("val_"), number, epoch, run=run)
    if member.fold is None:  # per-epoch reports; a CV trial reports its mean at the end
        tuner.oracle.update_trial(record.trial.trial_id, {objective.name: value}, step=epoch)
    # The median stopping rule is the oracle's (as for sequential and parallel trials):
    # it answers a member's per-epoch report with "STOPPED". Folds report in order,
    # fold 0 first (its first report starts the trial's curve afresh).
    if tuner.pruner is not None and _pruning.report_epoch(
            tuner.oracle, record.trial.trial_id, member.curve, objective.direction,
            fold=member.fold or 0):
        record.pruned = True


def _finish(tuner, trainer, members, first_epoch, final):
    """Store the folds of stopped trials (every fold, ``final``); end the trials that are done.

    A trial ends once each of its folds has a curve, or as soon as one fold stopped it
    (pruned, failed): then with the curves of its folds so far, as the sequential path.
    """
    for member in members:
        record = member.record
        if record.ended or member.fold in record.curves or not (final or not member.live):
            continue
        record.curves[member.fold] = member.curve
        if member.fold is None:
            record.best_epoch = member.best_epoch
            if not record.failed:  # KerasTuner's best-epoch checkpoint (no CV here)
                _compat.cache_saving_skipsets()  # (member builds reset Keras's state)
                model = trainer.member_model(member.index, best=True)
                model.save_weights(_compat.checkpoint_file(tuner, record.trial.trial_id))
                _compat.save_build_config(tuner, record.trial.trial_id, model)
    ended = False
    for record in dict.fromkeys(member.record for member in members):
        if not record.ended and (len(record.curves) == record.folds or record.pruned
                                 or record.failed):
            _end_trial(tuner, record, first_epoch)
            ended = True
    if ended:  # results.csv once for the members that ended together, not once each
        from kerastrain.tuning import _results

        _results.write_results(tuner.project_dir)


def _end_trial(tuner, record, first_epoch):
    """Curve, HParams, oracle metrics and the trial's end (as the sequential run_trial)."""
    from keras_tuner.engine import trial as trial_module

    from kerastrain.tuning import _cv, _results
    from kerastrain.tuning._tuner import _mean_curve

    record.ended = True
    trial, objective = record.trial, tuner.oracle.objective
    trial_dir = os.path.join(tuner.project_dir, f"trial_{trial.trial_id}")
    os.makedirs(trial_dir, exist_ok=True)
    used = _used_names(record.spec, trial.hyperparameters)
    curves = [c for c in record.curves.values() if c]
    curve = _mean_curve(curves)
    if record.failed:
        _results.write_curve(trial_dir, curve, False, tuner.tuner_id, first_epoch, used,
                             failed=record.failed)
        trial.status = trial_module.TrialStatus.FAILED
        trial.message = f"NonFiniteLossError: {record.failed}"
        score = None
    else:
        _results.write_curve(trial_dir, curve, record.pruned, tuner.tuner_id, first_epoch, used)
        direction = np.max if objective.direction == "max" else np.min
        score, std = _cv.summarize_folds([float(direction(c)) for c in curves])
        metrics = {objective.name: score, "epochs": float(sum(len(c) for c in curves)),
                   "pruned": float(record.pruned),
                   "seconds": time.perf_counter() - record.started}
        if tuner.cv:
            metrics["score_std"] = std
        tuner.oracle.update_trial(trial.trial_id, metrics, step=record.best_epoch)
        tuner._write_hparams(trial, score)
        trial.status = trial_module.TrialStatus.COMPLETED
    if tuner.progress is not None:
        tuner.progress.end_trial(trial.trial_id, score, record.pruned,
                                 **({"reason": record.failed} if record.failed else {}))
    # KerasTuner's end of a trial (oracle.end_trial, tuner state); the caller then
    # rebuilds results.csv once for every member that ended with this one.
    from kerastrain.tuning._tuner import KerastrainTunerMixin

    super(KerastrainTunerMixin, tuner).on_trial_end(trial)


def _used_names(spec, hp):
    """The hyperparameters the member's model reads (inactive ``units_i`` left out)."""
    return {name for name in hp.values if not name.startswith("tuner/") and hp.is_active(name)}
