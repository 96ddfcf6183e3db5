"""Moment and adaptive-scaling transforms: M_t and √(G_t + ε) of the formula."""

from __future__ import annotations

import math

import keras
from keras import ops

from kerastrain._validation import check_integer, check_one_of, check_positive
from kerastrain.optimizers import _hyper
from kerastrain.optimizers._transforms import Transform

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
_PLACEMENTS = ("inside", "outside", "outside_uncorrected")
_F32 = "float32"


def _step(optimizer):
    return ops.cast(optimizer.iterations + 1, _F32)


def _one_minus_power(beta, step, keras_rounding=False):
    """1 − βᵗ, accurate in float32 for a constant β (−expm1(t·ln β), ln β in float64).

    With ``keras_rounding`` it is computed as keras.optimizers do (β in float32,
    raised to t), which is off by up to ~1e-5 relative at small t for β = 0.999.
    """
    if isinstance(beta, (int, float)) and not keras_rounding:
        return 1.0 if beta == 0 else -ops.expm1(step * math.log(beta))
    return 1.0 - ops.power(beta, step)


def _scale(value, second_moment, epsilon, placement, context, correction=None):
    """value / √(G/c + ε) (inside), / (√(G/c) + ε) (outside) or · √c / (√G + ε).

    The bias correction c = 1 − β₂ᵗ goes into the chain's pending scalar
    ``context.scale`` as √c, with ε rescaled to match: one tensor pass fewer.
    """
    if correction is None:
        if placement == "inside":
            return value / ops.sqrt(second_moment + epsilon)
        return value / (ops.sqrt(second_moment) + epsilon)
    root = ops.sqrt(correction)
    context.scale = context.scale * root
    if placement == "outside_uncorrected":  # Keras Adam: m̂·√(1−β₂ᵗ) / (√v + ε)
        return value / (ops.sqrt(second_moment) + epsilon)
    if placement == "inside":
        return value / ops.sqrt(second_moment + epsilon * correction)
    return value / (ops.sqrt(second_moment) + epsilon * root)


@_register
class FirstMoment(Transform):
    """m ← β₁·m + (1−β₁)·u; u ← m / (1 − ∏β₁) with bias correction, else m.

    Args:
        beta_1: in [0, 1), a `LearningRateSchedule` or a callable of the step
            (then the bias correction uses the product of the β₁ values seen).
        bias_correction: bool, default True.
        keras_rounding: bool, default False: compute 1 − β₁ᵗ in float32 as Keras
            does (to reproduce keras.optimizers); False computes it accurately.
    """

    def __init__(self, beta_1=0.9, bias_correction=True, keras_rounding=False):
        self.beta_1 = _hyper.check_beta("beta_1", beta_1)
        self.bias_correction = _hyper.check_bool("bias_correction", bias_correction)
        self.keras_rounding = _hyper.check_bool("keras_rounding", keras_rounding)

    def build(self, optimizer, variables):
        slots = {"m": optimizer.add_optimizer_variables(variables, "m")}
        if _hyper.is_scheduled(self.beta_1) and self.bias_correction:
            slots["beta_1_product"] = [optimizer.add_variable((), "ones", _F32, name="beta_1_product")]
        return slots

    def begin_step(self, optimizer, grads, variables, slots):
        beta = _hyper.resolve(self.beta_1, optimizer.iterations, _F32)
        if not self.bias_correction:
            return beta, 1.0
        if _hyper.is_scheduled(self.beta_1):
            product_variable = slots["beta_1_product"][0]
            product = product_variable * beta
            optimizer.assign(product_variable, product)
            return beta, 1.0 / (1.0 - product)
        return beta, 1.0 / _one_minus_power(beta, _step(optimizer), self.keras_rounding)

    def update(self, updates, context):
        beta, correction = (_hyper.cast(s, context.dtype) for s in context.state)
        m = context.slots["m"]
        new = m + (updates - m) * (1.0 - beta)
        context.optimizer.assign(m, new)
        if not (isinstance(correction, float) and correction == 1.0):
            context.scale = context.scale * correction
        return new

    def get_config(self):
        return {"beta_1": _hyper.serialize(self.beta_1), "bias_correction": self.bias_correction,
                "keras_rounding": self.keras_rounding}


@_register
class ScaleByRMS(Transform):
    """u ← u / √(G + ε), G an average of squared gradients (RMSprop, Adam).

    v ← β₂·v + (1−β₂)·g²; G = v (or v − E[g]² if centered; max over time if
    amsgrad), divided by (1 − β₂ᵗ) with bias correction.

    Args:
        beta_2: decay in [0, 1) (RMSprop's `rho`), default 0.999.
        epsilon: ε > 0, default 1e-7.
        epsilon_placement: "inside" √(G+ε) (Keras RMSprop/Adagrad), "outside"
            √G + ε (PyTorch), or "outside_uncorrected" (√v + ε)/√(1−β₂ᵗ) (Keras Adam).
        bias_correction: bool, default False.
        centered: bool, subtract the squared mean gradient (centered RMSprop).
        amsgrad: bool, use the running maximum of v (Reddi et al. 2018).
        keras_rounding: bool, compute 1 − β₂ᵗ as Keras does (see `FirstMoment`).
    """

    scale_invariant = True

    def __init__(self, beta_2=0.999, epsilon=1e-7, epsilon_placement="inside",
                 bias_correction=False, centered=False, amsgrad=False, keras_rounding=False):
        self.beta_2 = _hyper.check_unit("beta_2", beta_2)
        self.epsilon = check_positive("epsilon", epsilon)
        self.epsilon_placement = check_one_of("epsilon_placement", epsilon_placement, _PLACEMENTS)
        self.bias_correction = _hyper.check_bool("bias_correction", bias_correction)
        self.centered = _hyper.check_bool("centered", centered)
        self.amsgrad = _hyper.check_bool("amsgrad", amsgrad)
        self.keras_rounding = _hyper.check_bool("keras_rounding", keras_rounding)

    def build(self, optimizer, variables):
        slots = {"v": optimizer.add_optimizer_variables(variables, "v")}
        if self.centered:
            slots["mean_gradient"] = optimizer.add_optimizer_variables(variables, "mean_gradient")
        if self.amsgrad:
            slots["v_max"] = optimizer.add_optimizer_variables(variables, "v_max")
        return slots

    def begin_step(self, optimizer, grads, variables, slots):
        if not self.bias_correction:
            return None
        return _one_minus_power(self.beta_2, _step(optimizer), self.keras_rounding)

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
        return _scale(updates, second, self.epsilon, self.epsilon_placement, context, correction)

    def get_config(self):
        return {"beta_2": self.beta_2, "epsilon": self.epsilon,
                "epsilon_placement": self.epsilon_placement,
                "bias_correction": self.bias_correction, "centered": self.centered,
                "amsgrad": self.amsgrad, "keras_rounding": self.keras_rounding}


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

    scale_invariant = True

    def __init__(self, initial_accumulator_value=0.1, epsilon=1e-7, epsilon_placement="inside",
                 reset_interval=None):
        self.initial_accumulator_value = check_positive(
            "initial_accumulator_value", initial_accumulator_value, allow_zero=True)
        self.epsilon = check_positive("epsilon", epsilon)
        self.epsilon_placement = check_one_of(
            "epsilon_placement", epsilon_placement, _PLACEMENTS[:2])
        if reset_interval is not None:
            reset_interval = check_integer(
                "reset_interval", reset_interval, minimum=1,
                hint="Use None to never reset the accumulator.")
        self.reset_interval = reset_interval

    def build(self, optimizer, variables):
        initializer = keras.initializers.Constant(self.initial_accumulator_value)
        return {"accumulator": [
            optimizer.add_variable_from_reference(v, "accumulator", initializer=initializer)
            for v in variables
        ]}

    def begin_step(self, optimizer, grads, variables, slots):
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
        return _scale(updates, total, self.epsilon, self.epsilon_placement, context)

    def get_config(self):
        return {"initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon, "epsilon_placement": self.epsilon_placement,
                "reset_interval": self.reset_interval}


@_register
class AdadeltaScale(Transform):
    """Adadelta: G ← ρG + (1−ρ)g²; d = √(D+ε)/√(G+ε)·u; D ← ρD + (1−ρ)d²; u ← d.

    Args:
        rho: in [0, 1), default 0.95.
        epsilon: ε > 0, default 1e-7.

    Reference: Zeiler 2012.
    """

    def __init__(self, rho=0.95, epsilon=1e-7):
        self.rho = _hyper.check_unit("rho", rho)
        self.epsilon = check_positive("epsilon", epsilon)

    def build(self, optimizer, variables):
        return {"accumulated_grad": optimizer.add_optimizer_variables(variables, "accumulated_grad"),
                "accumulated_delta": optimizer.add_optimizer_variables(variables, "accumulated_delta")}

    def update(self, updates, context):
        rho, eps, assign = self.rho, self.epsilon, context.optimizer.assign
        grad_acc, delta_acc = context.slots["accumulated_grad"], context.slots["accumulated_delta"]
        new_grad_acc = grad_acc * rho + ops.square(context.gradient) * (1.0 - rho)
        assign(grad_acc, new_grad_acc)
        delta = ops.sqrt(delta_acc + eps) / ops.sqrt(new_grad_acc + eps) * updates
        assign(delta_acc, delta_acc * rho + ops.square(delta) * (1.0 - rho))
        return delta

    def get_config(self):
        return {"rho": self.rho, "epsilon": self.epsilon}


@_register
class NadamMoment(Transform):
    """Nesterov first moment (Dozat 2016) with the momentum schedule μ_t.

    μ_t = β₁(1 − ½·0.96^(t·ψ)); m ← β₁m + (1−β₁)g;
    u ← μ_{t+1}·m / (1 − ∏_{i≤t+1}μ_i) + (1 − μ_t)·g / (1 − ∏_{i≤t}μ_i).

    Args:
        beta_1: in [0, 1), or a schedule / callable of the step.
        momentum_decay: ψ > 0 (Keras 1.0, PyTorch 0.004).
    """

    def __init__(self, beta_1=0.9, momentum_decay=1.0):
        self.beta_1 = _hyper.check_beta("beta_1", beta_1)
        self.momentum_decay = check_positive("momentum_decay", momentum_decay)

    def build(self, optimizer, variables):
        return {"m": optimizer.add_optimizer_variables(variables, "m"),
                "mu_product": [optimizer.add_variable((), "ones", _F32, name="mu_product")]}

    def begin_step(self, optimizer, grads, variables, slots):
        beta = _hyper.resolve(self.beta_1, optimizer.iterations, _F32)
        step = _step(optimizer)
        mu = beta * (1.0 - 0.5 * ops.power(0.96, step * self.momentum_decay))
        mu_next = beta * (1.0 - 0.5 * ops.power(0.96, (step + 1.0) * self.momentum_decay))
        product_variable = slots["mu_product"][0]
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

    def get_config(self):
        return {"beta_1": _hyper.serialize(self.beta_1), "momentum_decay": self.momentum_decay}


@_register
class ScaleByTrustRatio(Transform):
    """LARS layer-wise trust ratio: u ← η·‖w‖/(‖u‖ + ε)·u (1 where a norm is 0).

    Args:
        trust_coefficient: η > 0, default 0.001.
        epsilon: ε >= 0, default 0.

    Reference: You et al. 2017, "Large Batch Training of Convolutional Networks".
    """

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

    def get_config(self):
        return {"trust_coefficient": self.trust_coefficient, "epsilon": self.epsilon}


@_register
class RectifiedScale(Transform):
    """RAdam's rectified adaptive scale (placed after a bias-corrected `FirstMoment`).

    ρ∞ = 2/(1−β₂) − 1, ρ_t = ρ∞ − 2tβ₂ᵗ/(1−β₂ᵗ); when ρ_t > 5:
    u ← r_t·u·√(1−β₂ᵗ)/(√v + ε), r_t = √((ρ_t−4)(ρ_t−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρ_t)),
    else u unchanged (SGD with momentum).

    Reference: Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond".
    """

    scale_invariant = True

    def __init__(self, beta_2=0.999, epsilon=1e-7):
        self.beta_2 = _hyper.check_unit("beta_2", beta_2)
        self.epsilon = check_positive("epsilon", epsilon)

    def build(self, optimizer, variables):
        return {"v": optimizer.add_optimizer_variables(variables, "v")}

    def begin_step(self, optimizer, grads, variables, slots):
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

    def get_config(self):
        return {"beta_2": self.beta_2, "epsilon": self.epsilon}


@_register
class ScaleByBelief(Transform):
    """AdaBelief: scale by the belief in the gradient, s = EMA of (g − m)².

    m ← β₁m + (1−β₁)g; s ← β₂s + (1−β₂)(g − m)² + ε;
    u ← m̂ / (√ŝ + ε) with m̂ = m/(1−β₁ᵗ), ŝ = s/(1−β₂ᵗ).

    Reference: Zhuang et al. 2020, "AdaBelief Optimizer" (Algorithm 2).
    """

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-16):
        self.beta_1 = _hyper.check_beta("beta_1", beta_1)
        self.beta_2 = _hyper.check_unit("beta_2", beta_2)
        self.epsilon = check_positive("epsilon", epsilon)

    def build(self, optimizer, variables):
        return {"m": optimizer.add_optimizer_variables(variables, "m"),
                "s": optimizer.add_optimizer_variables(variables, "s")}

    def begin_step(self, optimizer, grads, variables, slots):
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

    def get_config(self):
        return {"beta_1": _hyper.serialize(self.beta_1), "beta_2": self.beta_2,
                "epsilon": self.epsilon}
