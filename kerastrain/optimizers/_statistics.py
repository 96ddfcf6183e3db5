"""`StatisticsMixin`: gradient statistics recorded inside `apply()`.

Every kerastrain optimizer (and any Keras optimizer wrapped by `monitored`)
records, into its own non-trainable variables:

- ``global_norm``: ‖g‖₂ over all gradients (as received by `apply()`, after
  loss-scale unscaling and before any clipping);
- ``gradient_norms``: ‖g_i‖₂ per trainable variable, in the order of
  `optimizer.statistics_variable_paths` (the variables the optimizer was built
  with);
- ``update_ratios``: ‖Δw_i‖₂ / ‖w_i‖₂ per variable, from the update actually
  applied (w after `apply()` minus w before, constraints included), with ‖w_i‖
  the norm before the step; 0 where ‖w_i‖ = 0 (zero-initialised biases at the
  first step);
- ``step``: the optimizer's step count just after the recorded step (0 before
  any recording).

They are recorded at the steps where ``(iterations - offset) % every == 0``,
``iterations`` counting the steps done before this one: by default the first
step and every ``statistics_every``-th after it. Recording is a branch
(``ops.cond``), so the steps in between pay only for the test. The kerastrain
callbacks that read the statistics move the schedule onto the steps they log
(`schedule_statistics`) for the duration of `fit`.

On JAX the branch runs *before* the update and computes the update it is
about to make in a nested `keras.StatelessScope` (nothing is assigned); the
update then depends on the branch's output (the gradients plus a −0.0 that
XLA cannot fold away), so XLA reads the old weights first and still updates
the donated buffers in place. A branch reading the old weights after the
update would make XLA copy them at every step, recording or not
(`bench/xla_inplace.py`).

No second backward pass is made: the gradients are the ones `apply()` gets.
Because the values live in optimizer variables, they survive JAX's stateless
`apply` and are read through `model.optimizer.gradient_statistics()`.

What depends on the backend (the squared norm's kernel, whether to record
before the update, reading the weights before it, assigning in a branch) is
behind `kerastrain._backend`'s statistics functions (`_backend/_statistics.py`);
this module asks no backend its name. `Monitored` (any Keras optimizer, plus
this recording) is in `_monitored.py`.
"""

from __future__ import annotations

import keras
from keras import ops

from kerastrain import _backend, _compat
from kerastrain._validation import check_integer, check_type

__all__ = ["DEFAULT_STATISTICS_EVERY", "StatisticsMixin"]

DEFAULT_STATISTICS_EVERY = 20


def variable_path(variable):
    """`variable.path`; a plain `tf.Variable` (which Keras's TF optimizers accept) has
    none, so its `name` (``"dense/kernel:0"``)."""
    path = getattr(variable, "path", None)
    return path if path is not None else variable.name


def check_statistics_every(value):
    return check_integer("statistics_every", value, minimum=1,
                         hint="Record the statistics every N >= 1 steps (1: every step).")


class StatisticsMixin:
    """Adds gradient-statistics recording to a `keras.optimizers.Optimizer`.

    The class using it calls `_init_statistics(record_statistics,
    statistics_every)` in ``__init__`` and `_build_statistics(variables)` from
    ``build``, and routes ``apply`` through `_apply_recording` (or records
    itself with `_record_if`).
    """

    def _init_statistics(self, record_statistics, statistics_every):
        self.record_statistics = check_type("record_statistics", record_statistics, bool,
                                            "a bool (True or False)")
        self._statistics_every = check_statistics_every(statistics_every)
        self._statistics_schedule = (self._statistics_every, 0)

    def _build_statistics(self, variables):
        self._statistics_paths = [variable_path(variable) for variable in variables]
        if not self.record_statistics:
            return
        count = len(variables)
        self._global_norm = self.add_variable((), dtype="float32", name="global_norm")
        self._gradient_norms = self.add_variable(
            (count,), dtype="float32", name="gradient_norms"
        )
        self._update_ratios = self.add_variable((count,), dtype="float32", name="update_ratios")
        self._statistics_step = self.add_variable((), dtype="int", name="statistics_step")
        # Created holding the schedule: `build` may run where assignments do not persist.
        every, offset = self._statistics_schedule
        self._statistics_period = self.add_variable(
            (), initializer=keras.initializers.Constant(every), dtype="int",
            name="statistics_every")
        self._statistics_offset = self.add_variable(
            (), initializer=keras.initializers.Constant(offset), dtype="int",
            name="statistics_offset")

    @property
    def statistics_every(self):
        """Steps between two recordings, as configured (callbacks may reschedule during fit)."""
        return self._statistics_every

    @property
    def statistics_variables(self):
        """The optimizer variables holding the statistics and their schedule.

        They are in `optimizer.variables` (JAX's stateless training carries
        optimizer state only through that list), always *after* every variable
        a Keras optimizer of the same configuration has (iterations, learning
        rate, EMA / accumulators, slots), so code zipping `variables` with a
        Keras optimizer's stops before them. Empty with ``record_statistics=False``.
        """
        if not (self.built and self.record_statistics):
            return []
        return [self._global_norm, self._gradient_norms, self._update_ratios,
                self._statistics_step, self._statistics_period, self._statistics_offset]

    @property
    def statistics_variable_paths(self):
        """`variable.path` of each trainable variable, in statistics order."""
        return list(getattr(self, "_statistics_paths", []))

    def schedule_statistics(self, every=None, offset=0):
        """Record at the steps where ``(iterations - offset) % every == 0``.

        ``iterations`` is the number of steps done before the step. Takes
        effect at the next step, also inside a compiled ``fit`` (the schedule
        lives in optimizer variables). `schedule_statistics()` restores the
        configured ``statistics_every`` from the first step.

        Args:
            every: integer >= 1, or None for the configured ``statistics_every``.
            offset: integer, the step (counting from 0) that the schedule is aligned to.
        """
        every = self._statistics_every if every is None else check_statistics_every(every)
        offset = check_integer("offset", offset)
        self._statistics_schedule = (every, offset % every)
        if self.built and self.record_statistics:
            self._assign_schedule()

    def _assign_schedule(self):
        every, offset = self._statistics_schedule
        self._statistics_period.assign(every)
        self._statistics_offset.assign(offset)

    def load_own_variables(self, store):
        # A schedule saved while a callback had moved it (a checkpoint during fit)
        # is not the loaded optimizer's: it records on its own configured schedule.
        super().load_own_variables(store)
        if self.built and self.record_statistics:
            self._assign_schedule()

    def gradient_statistics(self):
        """The statistics of the last recorded step, as backend tensors.

        Returns:
            ``{"global_norm": scalar, "gradient_norms": (n,),
            "update_ratios": (n,), "step": scalar}``, ``step`` the optimizer's
            step count just after the recorded step.
        """
        if not self.record_statistics:
            raise ValueError(
                f"Optimizer `{self.name}` was created with record_statistics=False, so it "
                "records no gradient statistics. Create it with record_statistics=True."
            )
        if not self.built:
            raise ValueError(
                f"Optimizer `{self.name}` has not been built yet, so it has no gradient "
                "statistics. Train (or call `optimizer.build(model.trainable_variables)`) first."
            )
        return {
            "global_norm": ops.convert_to_tensor(self._global_norm),
            "gradient_norms": ops.convert_to_tensor(self._gradient_norms),
            "update_ratios": ops.convert_to_tensor(self._update_ratios),
            "step": ops.convert_to_tensor(self._statistics_step),
        }

    def _ensure_built(self, trainable_variables):
        if trainable_variables is None:
            return list(_compat.optimizer_trainable_variables(self))
        trainable_variables = list(trainable_variables)
        if not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
            self.built = True
        return trainable_variables

    def _recording_now(self):
        """``(record, step)`` for the step about to run (call before it runs).

        ``record``: boolean scalar, does this step record; ``step``: the step
        count once this step is done.
        """
        iterations = ops.convert_to_tensor(self.iterations)
        offset = ops.cast(self._statistics_offset, iterations.dtype)
        period = ops.cast(self._statistics_period, iterations.dtype)
        return ops.equal(ops.mod(iterations - offset, period), 0), iterations + 1

    def _apply_recording(self, grads, trainable_variables, apply_function):
        """Run ``apply_function(grads, trainable_variables)``, recording statistics."""
        variables = self._ensure_built(trainable_variables)  # wrappers build here too
        if not self.record_statistics or len(grads) == 0:
            apply_function(grads, trainable_variables)
            return
        record, step = self._recording_now()
        if _backend.record_before_update():
            self._apply_recording_first(grads, trainable_variables, variables, record, step,
                                        apply_function)
            return
        before = _backend.snapshot(variables, record)
        apply_function(grads, trainable_variables)

        def squares():
            updates = [ops.subtract(ops.convert_to_tensor(variable), old)
                       for variable, old in zip(variables, before)]
            return self._squares(grads, variables, updates, before)

        self._record_if(record, step, squares)

    def _squares(self, grads, variables, updates, weights):
        """Σg², Σu², Σw² per built variable: u the step's change, w the weights before it."""
        zero = ops.zeros((), "float32")
        columns = [[zero] * len(self._statistics_paths) for _ in range(3)]
        for gradient, variable, update, weight in zip(grads, variables, updates, weights):
            index = _compat.variable_index(self, variable)
            if gradient is not None:
                columns[0][index] = _backend.squared_norm(gradient)
            columns[1][index] = _backend.squared_norm(update)
            columns[2][index] = _backend.squared_norm(weight)
        return columns

    def _apply_recording_first(self, grads, trainable_variables, variables, record, step,
                               apply_function):
        """Record from a dry run of the update, then update (JAX; see the module docstring)."""
        before = [ops.convert_to_tensor(v) for v in variables]

        def squares():
            after = self._dry_run(grads, trainable_variables, variables, apply_function)
            updates = [ops.subtract(new, old) for new, old in zip(after, before)]
            return self._squares(grads, variables, updates, before)

        if _backend.concrete_bool(record) is not None:  # eager: no branch, so nothing to order
            self._record_if(record, step, squares)
            apply_function(grads, trainable_variables)
            return
        recorded_step = self._record_if(record, step, squares)[-1]
        # −0.0 always (steps are never negative), but XLA cannot know it: the
        # update waits for the branch, and g + (−0.0) is g bit for bit.
        ordering = ops.where(recorded_step < 0, 0.0, -0.0)
        grads = [None if g is None else g + ops.cast(ordering, g.dtype) for g in grads]
        apply_function(grads, trainable_variables)

    def _dry_run(self, grads, trainable_variables, variables, apply_function):
        """The values ``apply_function`` would give ``variables``; nothing is assigned."""
        seen, mapping = set(), []
        for variable in [*variables, *self.variables]:
            if id(variable) not in seen:
                seen.add(id(variable))
                mapping.append((variable, ops.convert_to_tensor(variable)))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            apply_function(grads, trainable_variables)
        return [scope.get_current_value(variable) for variable in variables]

    def _record_if(self, record, step, squares):
        """Where ``record`` (from `_recording_now`), store the statistics from ``squares()``.

        ``squares()`` returns three lists (gradient, update, weight squared
        norms; one scalar per built variable) and runs only on recording steps
        where the backend can branch. Where `_backend.record_before_update()`,
        returns the stored values (global norm, gradient norms, update ratios,
        step); else None.
        """

        def recorded():
            gradient_squares, update_squares, weight_squares = (ops.stack(c) for c in squares())
            positive = weight_squares > 0
            safe_weights = ops.where(positive, weight_squares, ops.ones_like(weight_squares))
            ratios = ops.where(positive, ops.sqrt(update_squares / safe_weights),
                               ops.zeros_like(safe_weights))
            return (ops.sqrt(ops.sum(gradient_squares)), ops.sqrt(gradient_squares), ratios,
                    ops.cast(step, self._statistics_step.dtype))

        targets = (self._global_norm, self._gradient_norms, self._update_ratios,
                   self._statistics_step)
        return _backend.assign_where(record, targets, recorded)
