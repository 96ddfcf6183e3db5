"""`Chain`: the unified update Δθ_t = −α_t · M_t / √(G_t + ε) as composed transforms."""

from __future__ import annotations

import keras
from keras import ops

from kerastrain import _backend, _compat
from kerastrain._validation import check_type, type_error
from kerastrain.optimizers import _hyper
from kerastrain.optimizers._protocol import Context, Scaled, Transform
from kerastrain.optimizers._sgd import ScaleByLearningRate
from kerastrain.optimizers._statistics import DEFAULT_STATISTICS_EVERY, StatisticsMixin

__all__ = ["Chain"]


@keras.saving.register_keras_serializable(package="kerastrain")
class Chain(StatisticsMixin, keras.optimizers.Optimizer):
    """One optimizer built from small gradient transforms, applied in order.

    The update starts as the gradient g, each transform maps it to a new one,
    and θ ← θ − u. The learning rate α_t multiplies the update where a
    `ScaleByLearningRate()` sits (appended at the end if the chain has none),
    so Δθ_t = −α_t · M_t / √(G_t + ε) is, for Adam,
    ``Chain([FirstMoment(0.9), ScaleByRMS(0.999, bias_correction=True)])``.
    Gradient statistics are recorded inside `apply()` (see
    `gradient_statistics()`).

    Args:
        transforms: list of `Transform` instances (kerastrain.optimizers.transforms).
        learning_rate: float >= 0, `LearningRateSchedule`, or callable; default 0.001.
        record_statistics: bool, default True: record global / per-variable
            gradient norms and update/weight ratios (see `gradient_statistics()`).
        statistics_every: integer >= 1, default 20: record at the first step
            and every N-th step after it (1: every step). Recording costs three
            reductions over the parameters; the other steps only test the step
            count. kerastrain's callbacks align the recording with the steps
            they log during `fit` (`schedule_statistics`).
        **kwargs: base `keras.optimizers.Optimizer` arguments (`name`,
            `weight_decay`, `clipnorm`, `use_ema`, `gradient_accumulation_steps`, ...).

    Example:

    ```python
    from kerastrain.optimizers import Chain, transforms as T
    opt = Chain([T.ClipByGlobalNorm(1.0), T.FirstMoment(0.9),
                 T.ScaleByRMS(0.999, bias_correction=True), T.WeightDecay(1e-4)],
                learning_rate=1e-3)
    model.compile(optimizer=opt, loss="mse")
    ```

    Reference: optax's `chain` of `GradientTransformation`s.
    """

    def __init__(self, transforms, learning_rate=0.001, record_statistics=True,
                 statistics_every=DEFAULT_STATISTICS_EVERY, **kwargs):
        check_type("transforms", transforms, (list, tuple), "a list of Transform instances")
        for transform in transforms:
            if not isinstance(transform, Transform):
                raise type_error(
                    "transforms", "a list of Transform instances", transform,
                    "Build transforms from kerastrain.optimizers.transforms, "
                    "e.g. transforms.Momentum(0.9).")
        learning_rate = _hyper.check_learning_rate(learning_rate)
        super().__init__(learning_rate=learning_rate, **kwargs)
        self._init_statistics(record_statistics, statistics_every)
        transforms = list(transforms)
        if not any(isinstance(t, ScaleByLearningRate) for t in transforms):
            transforms.append(ScaleByLearningRate())
        self._transforms = transforms

    @property
    def transforms(self):
        """The transforms, in the order they run."""
        return list(self._transforms)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # Per transform: {slot name: [one per model variable]} and {slot name: scalar}.
        self._slots, self._global_slots = [], []
        for transform in self._transforms:
            per_variable, scalars = transform.build(self, variables)
            self._slots.append(per_variable)
            self._global_slots.append(scalars)
        self._build_statistics(variables)

    def apply(self, grads, trainable_variables=None):
        self._ensure_built(trainable_variables)
        if (self.record_statistics and len(grads) > 0 and not _backend.record_before_update()
                and self._update_is_whole_step()):
            # The applied update is exactly the chain's output: record it in
            # `_backend_update_step`, from tensors already at hand (no weight copies).
            # Not where the backend records before the update (JAX: `_apply_recording`).
            self._fast_recording = self._recording_now()
            try:
                super().apply(grads, trainable_variables)
            finally:
                self._fast_recording = None
        else:
            self._apply_recording(grads, trainable_variables, super().apply)

    def _update_is_whole_step(self):
        """True when nothing but the chain changes the weights or the gradients."""
        base = (self._base_weight_decay(), self.clipnorm, self.clipvalue, self.global_clipnorm,
                self.gradient_accumulation_steps)
        return (all(value is None for value in base) and not self.use_ema
                and all(v.constraint is None for v in _compat.optimizer_trainable_variables(self)))

    def _base_weight_decay(self):
        """The weight decay the base `keras.optimizers.Optimizer` applies itself."""
        return self.weight_decay

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        self._step_states = [
            transform.begin_step(self, grads, trainable_variables, scalars)
            for transform, scalars in zip(self._transforms, self._global_slots)
        ]
        self._updates = {}
        super()._backend_update_step(grads, trainable_variables, learning_rate)
        if getattr(self, "_fast_recording", None) is not None:
            self._record_fast(grads, trainable_variables, self._updates)
        self._updates = {}

    def _record_fast(self, grads, variables, updates):
        """Record from the gradients and the updates u applied (w ← w − u).

        The weights before the step are w + u: no copy of them is kept.
        """
        record, step = self._fast_recording

        def squares():
            applied = [updates[_compat.variable_index(self, v)] for v in variables]
            before = [ops.convert_to_tensor(v) + u for v, u in zip(variables, applied)]
            return self._squares(grads, variables, applied, before)

        self._record_if(record, step, squares)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        index = _compat.variable_index(self, variable)
        updates = ops.cast(gradient, dtype)
        context = Context(optimizer=self, variable=variable, gradient=updates, dtype=dtype,
                          learning_rate=ops.cast(learning_rate, dtype),
                          iterations=self.iterations)
        # Scalar factors returned as `Scaled` (bias corrections, α) stay pending and
        # multiply the tensor once, before the first transform that is not
        # scale-invariant, before a gradient transform's output becomes the gradient,
        # or at the end.
        pending = None
        for transform, slots, scalars, state in zip(
                self._transforms, self._slots, self._global_slots, self._step_states):
            if pending is not None and not transform.scale_invariant:
                updates, pending = updates * pending, None
            context.slots = {name: values[index] for name, values in slots.items()}
            context.global_slots, context.state = scalars, state
            result = transform.update(updates, context)
            if isinstance(result, Scaled):
                updates = result.updates
                pending = result.factor if pending is None else pending * result.factor
            else:
                updates = result
            if transform.gradient_transform:
                if pending is not None:
                    updates, pending = updates * pending, None
                context.gradient = updates
        if pending is not None:
            updates = updates * pending
        if getattr(self, "_fast_recording", None) is not None:
            self._updates[index] = updates
        self.assign_sub(variable, updates)

    def get_config(self):
        config = super().get_config()
        config["record_statistics"] = self.record_statistics
        config["statistics_every"] = self.statistics_every
        config["transforms"] = [
            keras.saving.serialize_keras_object(t) for t in self._transforms
        ]
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["transforms"] = [
            keras.saving.deserialize_keras_object(t, custom_objects=custom_objects)
            for t in config["transforms"]
        ]
        return super().from_config(config, custom_objects=custom_objects)
