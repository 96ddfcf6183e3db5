"""Moment and adaptive-scaling transforms: M_t and √(G_t + ε) of the formula."""

from __future__ import annotations

import math

import keras
from keras import ops

from kerastrain._validation import check_integer, check_one_of, check_positive
from kerastrain.optimizers import _hyper
from kerastrain.optimizers._protocol import Hyperparameter, Scaled, Slot, Transform

__all__ = [
    "AdadeltaScale",
    "AdagradScale",
    "FirstMoment",
    "NadamMoment",
    "RectifiedScale",
    "ScaleByBelief",
    "ScaleByRMS",
    "ScaleByTrustRatio",
]

_register = keras.saving.register_keras_serializable(package="kerastrain")
_PLACEMENTS = ("inside", "outside")
_F32 = "float32"
_EPSILON = Hyperparameter("epsilon", "ε, keeps the division finite")
_PLACEMENT = Hyperparameter("epsilon_placement", '"inside" √(G + ε) or "outside" √G + ε',
                            "choice")


def _step(optimizer):
    return ops.cast(optimizer.iterations + 1, _F32)


def _one_minus_power(beta, step):
    """1 − βᵗ, accurate in float32 for a constant β (−expm1(t·ln β), ln β in float64)."""
    if isinstance(beta, (int, float)):
        return 1.0 if beta == 0 else -ops.expm1(step * math.log(beta))
    return 1.0 - ops.power(beta, step)


def _scale(value, second_moment, epsilon, placement):
    """value / √(G + ε) (inside) or value / (√G + ε) (outside)."""
    if placement == "inside":
        return value / ops.sqrt(second_moment + epsilon)
    return value / (ops.sqrt(second_moment) + epsilon)


def _corrected_scale(value, second_moment, epsilon, placement, correction):
    """value / √(G/c + ε) or value / (√(G/c) + ε), c = 1 − β₂ᵗ, as `Scaled`.

    √c is returned as the pending factor, with ε rescaled to match: one tensor
    pass fewer than dividing G by c.
    """
    root = ops.sqrt(correction)
    if placement == "inside":
        return Scaled(value / ops.sqrt(second_moment + epsilon * correction), root)
    return Scaled(value / (ops.sqrt(second_moment) + epsilon * root), root)


@_register
class FirstMoment(Transform):
    """m ← β₁·m + (1−β₁)·u; u ← m / (1 − ∏β₁) with bias correction, else m.

    Args:
        beta_1: in [0, 1), a `LearningRateSchedule` or a callable of the step
            (then the bias correction uses the product of the β₁ values seen).
        bias_correction: bool, default True.
    """

    hyperparameters = (Hyperparameter("beta_1", "β₁, the first moment's decay", "schedulable"),
                       Hyperparameter("bias_correction", "divide m by 1 − ∏β₁", "bool"))
    slots = ("m",)

    def __init__(self, beta_1=0.9, bias_correction=True):
        self.beta_1 = _hyper.check_beta("beta_1", beta_1)
        self.bias_correction = _hyper.check_bool("bias_correction", bias_correction)

    @property
    def global_slots(self):
        if _hyper.is_scheduled(self.beta_1) and self.bias_correction:
            return (Slot("beta_1_product", "ones"),)
        return ()

    def _one_minus_power(self, beta, step):
        """1 − β₁ᵗ for a constant β₁ (presets override it to round as Keras does)."""
        return _one_minus_power(beta, step)

    def begin_step(self, optimizer, grads, variables, global_slots):
        """(β₁ at this step, 1/(1 − ∏β₁) or None when there is nothing to correct)."""
        beta = _hyper.resolve(self.beta_1, optimizer.iterations, _F32)
        if not self.bias_correction:
            return beta, None
        if _hyper.is_scheduled(self.beta_1):
            product_variable = global_slots["beta_1_product"]
            product = product_variable * beta
            optimizer.assign(product_variable, product)
            return beta, 1.0 / (1.0 - product)
        if beta == 0:  # 1 − 0ᵗ = 1
            return beta, None
        return beta, 1.0 / self._one_minus_power(beta, _step(optimizer))

    def update(self, updates, context):
        beta, correction = context.state
        beta = _hyper.cast(beta, context.dtype)
        m = context.slots["m"]
        new = m + (updates - m) * (1.0 - beta)
        context.optimizer.assign(m, new)
        if correction is None:
            return new
        return Scaled(new, _hyper.cast(correction, context.dtype))

    @classmethod
    def from_config(cls, config):
        """Also reads configs saved with the former ``keras_rounding=True`` (now `KerasFirstMoment`)."""
        config = dict(config)
        if config.pop("keras_rounding", False):
            from kerastrain.optimizers._presets import KerasFirstMoment

            return KerasFirstMoment.from_config(config)
        return super().from_config(config)


@_register
class ScaleByRMS(Transform):
    """u ← u / √(G + ε), G an average of squared gradients (RMSprop, Adam).

    v ← β₂·v + (1−β₂)·g²; G = v (or v − E[g]² if centered; max over time if
    amsgrad), divided by (1 − β₂ᵗ) with bias correction.

    Args:
        beta_2: decay in [0, 1) (RMSprop's `rho`), default 0.999.
        epsilon: ε > 0, default 1e-7.
        epsilon_placement: "inside" √(G+ε) (Keras RMSprop/Adagrad) or "outside"
            √G + ε (PyTorch). (Keras Adam's ε-hat is the `Adam` preset's own.)
        bias_correction: bool, default False.
        centered: bool, subtract the squared mean gradient (centered RMSprop).
        amsgrad: bool, use the running maximum of v (Reddi et al. 2018).
    """

    hyperparameters = (
        Hyperparameter("beta_2", "β₂, the second moment's decay"), _EPSILON, _PLACEMENT,
        Hyperparameter("bias_correction", "divide v by 1 − β₂ᵗ", "bool"),
        Hyperparameter("centered", "subtract the squared mean gradient", "bool"),
        Hyperparameter("amsgrad", "use the running maximum of v", "bool"))
    scale_invariant = True

    def __init__(self, beta_2=0.999, epsilon=1e-7, epsilon_placement="inside",
                 bias_correction=False, centered=False, amsgrad=False):
        self.beta_2 = _hyper.check_unit("beta_2", beta_2)
        self.epsilon = check_positive("epsilon", epsilon)
        self.epsilon_placement = check_one_of("epsilon_placement", epsilon_placement, _PLACEMENTS)
        self.bias_correction = _hyper.check_bool("bias_correction", bias_correction)
        self.centered = _hyper.check_bool("centered", centered)
        self.amsgrad = _hyper.check_bool("amsgrad", amsgrad)

    @property
    def slots(self):
        return ("v", *(("mean_gradient",) if self.centered else ()),
                *(("v_max",) if self.amsgrad else ()))

    def _one_minus_power(self, beta, step):
        """1 − β₂ᵗ (presets override it to round as Keras does)."""
        return _one_minus_power(beta, step)

    def _divide(self, updates, second_moment, correction):
        """updates / the scale, c = 1 − β₂ᵗ (None without bias correction)."""
        if correction is None:
            return _scale(updates, second_moment, self.epsilon, self.epsilon_placement)
        return _corrected_scale(updates, second_moment, self.epsilon, self.epsilon_placement,
                                correction)

    def begin_step(self, optimizer, grads, variables, global_slots):
        if not self.bias_correction:
            return None
        return self._one_minus_power(self.beta_2, _step(optimizer))

    def update(self, updates, context):
        g, beta, assign = context.gradient, self.beta_2, context.optimizer.assign
        v = context.slots["v"]
        if self.bias_correction:  # Keras Adam's rounding: v + (g² − v)(1 − β₂)
            second = v + (ops.square(g) - v) * (1.0 - beta)
        else:  # Keras RMSprop's: β₂v + (1 − β₂)g²
            second = v * beta + ops.square(g) * (1.0 - beta)
        assign(v, second)
        if self.centered:
            mean = context.slots["mean_gradient"]
            new_mean = mean * beta + g * (1.0 - beta)
            assign(mean, new_mean)
            second = second - ops.square(new_mean)
        if self.amsgrad:
            second = ops.maximum(ops.convert_to_tensor(context.slots["v_max"]), second)
            assign(context.slots["v_max"], second)
        correction = None if context.state is None else _hyper.cast(context.state, context.dtype)
        return self._divide(updates, second, correction)

    @classmethod
    def from_config(cls, config):
        """Also reads configs saved with the former ``keras_rounding`` / "outside_uncorrected"."""
        config = dict(config)
        rounding = config.pop("keras_rounding", False)
        if rounding or config.get("epsilon_placement") == "outside_uncorrected":
            from kerastrain.optimizers._presets import KerasAdamScale

            return KerasAdamScale.from_legacy_config(config, rounding)
        return super().from_config(config)


@_register
class AdagradScale(Transform):
    """Adagrad: G ← G + g²; u ← u / √(G + ε), G reset every `reset_interval` steps.

    Args:
        initial_accumulator_value: G₀ >= 0 (Keras 0.1, PyTorch 0).
        epsilon: ε > 0.
        epsilon_placement: "inside" (Keras) or "outside" (PyTorch).
        reset_interval: None, or an integer >= 1: at steps k+1, 2k+1, ... G
            restarts from G₀ (the chapter's remedy for a vanishing rate).

    Reference: Duchi et al. 2011.
    """

    hyperparameters = (
        Hyperparameter("initial_accumulator_value", "G₀, where G starts and restarts"),
        _EPSILON, _PLACEMENT,
        Hyperparameter("reset_interval", "k: G restarts every k steps (None: never)", "integer"))
    scale_invariant = True

    def __init__(self, initial_accumulator_value=0.1, epsilon=1e-7, epsilon_placement="inside",
                 reset_interval=None):
        self.initial_accumulator_value = check_positive(
            "initial_accumulator_value", initial_accumulator_value, allow_zero=True)
        self.epsilon = check_positive("epsilon", epsilon)
        self.epsilon_placement = check_one_of(
            "epsilon_placement", epsilon_placement, _PLACEMENTS)
        if reset_interval is not None:
            reset_interval = check_integer(
                "reset_interval", reset_interval, minimum=1,
                hint="Use None to never reset the accumulator.")
        self.reset_interval = reset_interval

    @property
    def slots(self):
        return (Slot("accumulator", self.initial_accumulator_value),)

    def begin_step(self, optimizer, grads, variables, global_slots):
        """Whether G restarts at this step (None: it never does)."""
        if self.reset_interval is None:
            return None
        completed = optimizer.iterations
        return ops.logical_and(completed > 0, completed % self.reset_interval == 0)

    def update(self, updates, context):
        accumulator = context.slots["accumulator"]
        previous = ops.convert_to_tensor(accumulator)
        if context.state is not None:
            previous = ops.where(context.state, self.initial_accumulator_value, previous)
        total = previous + ops.square(context.gradient)
        context.optimizer.assign(accumulator, total)
        return _scale(updates, total, self.epsilon, self.epsilon_placement)


@_register
class AdadeltaScale(Transform):
    """Adadelta: G ← ρG + (1−ρ)g²; d = √(D+ε)/√(G+ε)·u; D ← ρD + (1−ρ)d²; u ← d.

    Args:
        rho: in [0, 1), default 0.95.
        epsilon: ε > 0, default 1e-7.

    Reference: Zeiler 2012.
    """

    hyperparameters = (Hyperparameter("rho", "ρ, the decay of both accumulators"), _EPSILON)
    slots = ("accumulated_grad", "accumulated_delta")

    def __init__(self, rho=0.95, epsilon=1e-7):
        self.rho = _hyper.check_unit("rho", rho)
        self.epsilon = check_positive("epsilon", epsilon)

    def update(self, updates, context):
        rho, eps, assign = self.rho, self.epsilon, context.optimizer.assign
        grad_acc, delta_acc = context.slots["accumulated_grad"], context.slots["accumulated_delta"]
        new_grad_acc = grad_acc * rho + ops.square(context.gradient) * (1.0 - rho)
        assign(grad_acc, new_grad_acc)
        delta = ops.sqrt(delta_acc + eps) / ops.sqrt(new_grad_acc + eps) * updates
        assign(delta_acc, delta_acc * rho + ops.square(delta) * (1.0 - rho))
        return delta


@_register
class NadamMoment(Transform):
    """Nesterov first moment (Dozat 2016) with the momentum schedule μ_t.

    μ_t = β₁(1 − ½·0.96^(t·ψ)); m ← β₁m + (1−β₁)g;
    u ← μ_{t+1}·m / (1 − ∏_{i≤t+1}μ_i) + (1 − μ_t)·g / (1 − ∏_{i≤t}μ_i).

    Args:
        beta_1: in [0, 1), or a schedule / callable of the step.
        momentum_decay: ψ > 0 (Keras 1.0, PyTorch 0.004).
    """

    hyperparameters = (Hyperparameter("beta_1", "β₁, the first moment's decay", "schedulable"),
                       Hyperparameter("momentum_decay", "ψ in μ_t = β₁(1 − ½·0.96^(tψ))"))
    slots = ("m",)
    global_slots = (Slot("mu_product", "ones"),)

    def __init__(self, beta_1=0.9, momentum_decay=1.0):
        self.beta_1 = _hyper.check_beta("beta_1", beta_1)
        self.momentum_decay = check_positive("momentum_decay", momentum_decay)

    def begin_step(self, optimizer, grads, variables, global_slots):
        """(β₁, the coefficient of m, the coefficient of g) at this step."""
        beta = _hyper.resolve(self.beta_1, optimizer.iterations, _F32)
        step = _step(optimizer)
        mu = beta * (1.0 - 0.5 * ops.power(0.96, step * self.momentum_decay))
        mu_next = beta * (1.0 - 0.5 * ops.power(0.96, (step + 1.0) * self.momentum_decay))
        product_variable = global_slots["mu_product"]
        product = product_variable * mu
        optimizer.assign(product_variable, product)
        return (beta, mu_next / (1.0 - product * mu_next), (1.0 - mu) / (1.0 - product))

    def update(self, updates, context):
        beta, next_coefficient, gradient_coefficient = (
            _hyper.cast(s, context.dtype) for s in context.state)
        m = context.slots["m"]
        new = m + (updates - m) * (1.0 - beta)
        context.optimizer.assign(m, new)
        return new * next_coefficient + updates * gradient_coefficient


@_register
class ScaleByTrustRatio(Transform):
    """LARS layer-wise trust ratio: u ← η·‖w‖/(‖u‖ + ε)·u (1 where a norm is 0).

    Args:
        trust_coefficient: η > 0, default 0.001.
        epsilon: ε >= 0, default 0.

    Reference: You et al. 2017, "Large Batch Training of Convolutional Networks".
    """

    hyperparameters = (Hyperparameter("trust_coefficient", "η, the update/weight norm ratio"),
                       Hyperparameter("epsilon", "ε added to ‖u‖"))

    def __init__(self, trust_coefficient=0.001, epsilon=0.0):
        self.trust_coefficient = check_positive("trust_coefficient", trust_coefficient)
        self.epsilon = check_positive("epsilon", epsilon, allow_zero=True)

    def update(self, updates, context):
        weight_norm = ops.sqrt(ops.sum(ops.square(ops.convert_to_tensor(context.variable))))
        update_norm = ops.sqrt(ops.sum(ops.square(updates)))
        both = ops.logical_and(weight_norm > 0, update_norm > 0)
        ratio = ops.where(
            both, self.trust_coefficient * weight_norm / ops.where(both, update_norm + self.epsilon, 1.0), 1.0)
        return updates * ratio


@_register
class RectifiedScale(Transform):
    """RAdam's rectified adaptive scale (placed after a bias-corrected `FirstMoment`).

    ρ∞ = 2/(1−β₂) − 1, ρ_t = ρ∞ − 2tβ₂ᵗ/(1−β₂ᵗ); when ρ_t > 5:
    u ← r_t·u·√(1−β₂ᵗ)/(√v + ε), r_t = √((ρ_t−4)(ρ_t−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρ_t)),
    else u unchanged (SGD with momentum).

    Reference: Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond".
    """

    hyperparameters = (Hyperparameter("beta_2", "β₂, the second moment's decay"), _EPSILON)
    slots = ("v",)
    scale_invariant = True

    def __init__(self, beta_2=0.999, epsilon=1e-7):
        self.beta_2 = _hyper.check_unit("beta_2", beta_2)
        self.epsilon = check_positive("epsilon", epsilon)

    def begin_step(self, optimizer, grads, variables, global_slots):
        """(whether ρ_t > 5, r_t·√(1 − β₂ᵗ)) at this step."""
        step, beta = _step(optimizer), self.beta_2
        one_minus_power = _one_minus_power(beta, step)
        rho_inf = 2.0 / (1.0 - beta) - 1.0
        rho = rho_inf - 2.0 * step * (1.0 - one_minus_power) / one_minus_power
        rectified = rho > 5.0
        safe_rho = ops.where(rectified, rho, 5.0 + 1.0)
        r = ops.sqrt((safe_rho - 4.0) * (safe_rho - 2.0) * rho_inf
                     / ((rho_inf - 4.0) * (rho_inf - 2.0) * safe_rho))
        return rectified, r * ops.sqrt(one_minus_power)

    def update(self, updates, context):
        rectified, coefficient = context.state
        v = context.slots["v"]
        new = v * self.beta_2 + ops.square(context.gradient) * (1.0 - self.beta_2)
        context.optimizer.assign(v, new)
        adaptive = updates * ops.cast(coefficient, context.dtype) / (ops.sqrt(new) + self.epsilon)
        return ops.where(rectified, adaptive, updates)


@_register
class ScaleByBelief(Transform):
    """AdaBelief: scale by the belief in the gradient, s = EMA of (g − m)².

    m ← β₁m + (1−β₁)g; s ← β₂s + (1−β₂)(g − m)² + ε;
    u ← m̂ / (√ŝ + ε) with m̂ = m/(1−β₁ᵗ), ŝ = s/(1−β₂ᵗ).

    Reference: Zhuang et al. 2020, "AdaBelief Optimizer" (Algorithm 2).
    """

    hyperparameters = (Hyperparameter("beta_1", "β₁, the first moment's decay", "schedulable"),
                       Hyperparameter("beta_2", "β₂, the decay of s"), _EPSILON)
    slots = ("m", "s")

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-16):
        self.beta_1 = _hyper.check_beta("beta_1", beta_1)
        self.beta_2 = _hyper.check_unit("beta_2", beta_2)
        self.epsilon = check_positive("epsilon", epsilon)

    def begin_step(self, optimizer, grads, variables, global_slots):
        """(β₁, 1/(1 − β₁ᵗ), 1/√(1 − β₂ᵗ)) at this step."""
        step = _step(optimizer)
        beta_1 = _hyper.resolve(self.beta_1, optimizer.iterations, _F32)
        return (beta_1, 1.0 / _one_minus_power(beta_1, step),
                1.0 / ops.sqrt(_one_minus_power(self.beta_2, step)))

    def update(self, updates, context):
        beta_1, first_correction, root_second_correction = (
            _hyper.cast(s, context.dtype) for s in context.state)
        m, s, assign = context.slots["m"], context.slots["s"], context.optimizer.assign
        g = context.gradient
        new_m = m * beta_1 + g * (1.0 - beta_1)
        assign(m, new_m)
        new_s = s * self.beta_2 + ops.square(g - new_m) * (1.0 - self.beta_2) + self.epsilon
        assign(s, new_s)
        return new_m * first_correction / (ops.sqrt(new_s) * root_second_correction + self.epsilon)
