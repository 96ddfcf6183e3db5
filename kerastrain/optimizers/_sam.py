"""Sharpness-aware minimization (SAM, ASAM): a wrapper around any Keras optimizer.

Also home of `prepare(model)`, the one line after ``compile`` that lets a
model train with the optimizers needing the loss (`SAM`, `HessianFree`); the
loss closure itself and its helpers are `kerastrain._backend._train_step`'s.
"""

from __future__ import annotations

import keras
from keras import ops

from kerastrain import _compat, _validation
from kerastrain._backend import evaluate_at, install_loss_aware_train_step, require_loss_closure
from kerastrain.optimizers._wrapping import OptimizerWrapper

__all__ = ["SAM", "prepare"]

def prepare(model):
    """Let ``model`` train with `SAM` / `HessianFree`: one line after ``compile``.

    Keras hands an optimizer only the gradients; `SAM` also needs the gradient
    at perturbed weights and `HessianFree` Hessian-vector products, i.e. the
    loss of the batch being trained as a function of the weights. Keras gives
    an optimizer no way to reach the model it trains, so this call wraps
    *this model's* train step (its class, and every other model, keep
    Keras's step) to publish that loss during each step whose optimizer
    needs it; with any other optimizer the step is Keras's own. Works for
    model classes with their own ``train_step`` too. Idempotent; recompiling
    keeps it; a model loaded from a ``.keras`` file needs it again. Returns
    the model. Without it, the first step raises an error naming this
    function, before any weight changes.

    Example:

    ```python
    model.compile(optimizer=SAM(keras.optimizers.SGD(0.1)), loss="mse")
    kerastrain.optimizers.prepare(model)
    model.fit(x, y)
    ```
    """
    _validation.check_type("model", model, keras.Model, "a keras.Model")
    return install_loss_aware_train_step(model)


def _global_norm(tensors):
    squares = [ops.sum(ops.square(tensor)) for tensor in tensors if tensor is not None]
    return ops.sqrt(ops.sum(ops.stack(squares)))


@keras.saving.register_keras_serializable(package="kerastrain")
class SAM(OptimizerWrapper):
    """Sharpness-aware minimization: descend with the gradient at the worst nearby point.

    Each step first climbs to the (first-order) worst point within radius ρ,
    then lets the wrapped optimizer descend with the gradient taken there:

        ε = ρ · g / (‖g‖ + epsilon),      g = ∇L(w)
        w ← optimizer step with ∇L(w + ε)

    With ``adaptive=True`` (ASAM) the neighbourhood scales with the weights,
    T = |w| + η element-wise:

        ε = ρ · T² g / (‖T g‖ + epsilon)

    Every step costs one extra forward and backward pass on the same batch.
    Call `kerastrain.optimizers.prepare(model)` once after ``compile`` (it
    lets the optimizer see the batch's loss). Learning rate, iterations and learning-rate callbacks go to the
    wrapped optimizer; under ``mixed_float16`` Keras wraps the `SAM` in a
    `LossScaleOptimizer`, which works.

    Args:
        optimizer: the `keras.optimizers.Optimizer` that takes the descent step
            (any Keras or kerastrain optimizer, not a `LossScaleOptimizer`).
        rho: float > 0, default 0.05 (Foret et al.'s CIFAR value). The radius
            of the neighbourhood; ASAM needs a larger one (Kwon et al. use 0.5
            to 2.0).
        adaptive: bool, default False. True for ASAM.
        eta: float >= 0, default 0.01 (Kwon et al.). ASAM's offset in
            T = |w| + η; keeps weights at zero perturbable. ``eta=0`` gives the
            ``adaptive=True`` rule of the widely used PyTorch implementation
            (davda54/sam). Unused when ``adaptive=False``.
        epsilon: float > 0, default 1e-12. Added to the norm in the
            denominator, so a zero gradient gives ε = 0.
        name: the optimizer's name.

    Example:

    ```python
    model.compile(optimizer=SAM(keras.optimizers.SGD(0.1, momentum=0.9)), loss="mse")
    kerastrain.optimizers.prepare(model)
    model.fit(x, y, epochs=5)
    ```

    Reference:
        Foret, Kleiner, Mobahi, Neyshabur. "Sharpness-Aware Minimization for
        Efficiently Improving Generalization", ICLR 2021.
        Kwon, Kim, Park, Choi. "ASAM: Adaptive Sharpness-Aware Minimization for
        Scale-Invariant Learning of Deep Neural Networks", ICML 2021.
    """

    requires_loss_closure = True

    def __init__(self, optimizer, rho=0.05, adaptive=False, eta=0.01, epsilon=1e-12,
                 name=None, **kwargs):
        rho = _validation.check_positive("rho", rho)
        _validation.check_type("adaptive", adaptive, bool, "a bool")
        eta = _validation.check_positive("eta", eta, allow_zero=True)
        epsilon = _validation.check_positive("epsilon", epsilon)
        super().__init__(optimizer, name=name, kwargs=kwargs)
        self.rho = rho
        self.adaptive = adaptive
        self.eta = eta
        self.epsilon = epsilon

    def check_inner_optimizer(self, optimizer):
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            raise _validation.argument_error(
                "optimizer", "not be a LossScaleOptimizer", optimizer,
                "Wrap the other way around, LossScaleOptimizer(SAM(...)), which is "
                "what `compile` does under the mixed_float16 policy.",
            )

    def apply(self, grads, trainable_variables=None):
        closure = require_loss_closure(self)
        if not self.built:
            if trainable_variables is None:
                raise ValueError(
                    "`SAM.apply` needs `trainable_variables` on its first call (the "
                    "optimizer is not built). Received: trainable_variables=None"
                )
            with keras.name_scope(self.name, caller=self):
                self.build(list(trainable_variables))
        variables = (
            _compat.optimizer_trainable_variables(self) if trainable_variables is None
            else list(trainable_variables)
        )
        grads = self.sharpness_aware_gradients(closure, list(grads), variables)
        self.inner_optimizer.apply(grads, trainable_variables)

    def perturbation(self, grads, variables):
        """ε for each variable (None where the gradient is None)."""
        grads = [
            None if g is None else ops.cast(ops.convert_to_tensor(g), v.dtype)
            for g, v in zip(grads, variables)
        ]
        if self.adaptive:
            scales = [ops.add(ops.abs(v.value), self.eta) for v in variables]
            scaled = [None if g is None else g * t for g, t in zip(grads, scales)]
        else:
            scales = [None] * len(variables)
            scaled = grads
        factor = self.rho / (_global_norm(scaled) + self.epsilon)
        return [
            None if s is None else (s if t is None else s * t) * ops.cast(factor, s.dtype)
            for s, t in zip(scaled, scales)
        ]

    def sharpness_aware_gradients(self, closure, grads, variables):
        """∇L(w + ε) on the closure's batch, aligned with ``variables``."""
        deltas = self.perturbation(grads, variables)
        (_, model_grads), position = evaluate_at(
            closure, variables, deltas, closure.value_and_grad
        )
        factor = self.inner_optimizer.loss_scale_factor
        result = []
        for g, j in zip(grads, position):
            if g is None:
                result.append(None)
            elif factor is None:
                result.append(model_grads[j])
            else:  # the inner optimizer divides by its loss_scale_factor
                result.append(model_grads[j] * factor)
        return result

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "adaptive": self.adaptive, "eta": self.eta,
                       "epsilon": self.epsilon})
        return config
