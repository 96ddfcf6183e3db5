"""Presets beyond the chapter, as chains: LARS, RAdam, AdaBelief."""

from __future__ import annotations

import keras

from kerastrain._validation import check_positive
from kerastrain.optimizers import _hyper
from kerastrain.optimizers._presets import Preset
from kerastrain.optimizers._scaling import (
    FirstMoment,
    RectifiedScale,
    ScaleByBelief,
    ScaleByTrustRatio,
)
from kerastrain.optimizers._sgd import Momentum, ScaleByLearningRate, WeightDecay

__all__ = ["LARS", "AdaBelief", "RAdam"]

_register = keras.saving.register_keras_serializable(package="kerastrain")


@_register
class LARS(Preset):
    """Layer-wise Adaptive Rate Scaling, for large-batch SGD.

    u = g + λw; u ← η‖w‖/(‖u‖ + ε) · u (per variable); b ← μb + α u; θ ← θ − b.
    (The trust ratio uses ‖g + λw‖, as optax's `lars` does; the paper writes
    ‖g‖ + λ‖w‖.) Keras ships `Lamb` but no LARS.

    Args:
        learning_rate: default 1.0 (the trust ratio already scales by η).
        momentum: μ in [0, 1) or a schedule, default 0.9. nesterov: bool, default False.
        weight_decay: λ >= 0 (L2 folded into the gradient), default 1e-4.
        trust_coefficient: η > 0, default 0.001. epsilon: ε >= 0, default 0.
        record_statistics: bool, default True. **kwargs: base optimizer arguments.

    Example: ``model.compile(optimizer=LARS(learning_rate=2.0, weight_decay=1e-4), loss=...)``

    Reference: You, Gitman & Ginsburg 2017, "Large Batch Training of Convolutional Networks".
    """

    def __init__(self, learning_rate=1.0, momentum=0.9, nesterov=False, weight_decay=1e-4,
                 trust_coefficient=0.001, epsilon=0.0, record_statistics=True, name="lars",
                 **kwargs):
        momentum = _hyper.check_beta("momentum", momentum)
        decay = WeightDecay(weight_decay, decoupled=False)
        trust = ScaleByTrustRatio(trust_coefficient, epsilon)
        transforms = [decay, trust, ScaleByLearningRate(), Momentum(momentum, nesterov)]
        super().__init__(transforms,
                         {"momentum": momentum, "nesterov": nesterov,
                          "weight_decay": decay.weight_decay,
                          "trust_coefficient": trust.trust_coefficient, "epsilon": trust.epsilon},
                         learning_rate, record_statistics, None, dict(kwargs, name=name))


@_register
class RAdam(Preset):
    """Rectified Adam: Adam whose adaptive step is switched on once its variance is tractable.

    ρ∞ = 2/(1−β₂) − 1, ρ_t = ρ∞ − 2tβ₂ᵗ/(1−β₂ᵗ); if ρ_t > 5,
    θ ← θ − α r_t m̂ √(1−β₂ᵗ)/(√v + ε), else θ ← θ − α m̂ (PyTorch's `RAdam`).

    Args:
        learning_rate: default 0.001. beta_1: in [0, 1) or a schedule, default 0.9.
        beta_2: default 0.999. epsilon: default 1e-7 (PyTorch's 1e-8).
        record_statistics: bool, default True. **kwargs: base optimizer arguments.

    Reference: Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond".
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 record_statistics=True, name="radam", **kwargs):
        moment, scale = FirstMoment(beta_1), RectifiedScale(beta_2, epsilon)
        super().__init__([moment, scale],
                         {"beta_1": moment.beta_1, "beta_2": scale.beta_2, "epsilon": scale.epsilon},
                         learning_rate, record_statistics, None, dict(kwargs, name=name))


@_register
class AdaBelief(Preset):
    """AdaBelief: Adam with the second moment of (g − m), the "belief" in g.

    s ← β₂s + (1−β₂)(g − m)² + ε; θ ← θ − α m̂ / (√ŝ + ε).

    Args:
        learning_rate: default 0.001. beta_1: in [0, 1) or a schedule, default 0.9.
        beta_2: default 0.999. epsilon: default 1e-16 (the authors' default).
        record_statistics: bool, default True. **kwargs: base optimizer arguments.

    Reference: Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes by the
    Belief in Observed Gradients".
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-16,
                 record_statistics=True, name="adabelief", **kwargs):
        scale = ScaleByBelief(beta_1, beta_2, check_positive("epsilon", epsilon))
        super().__init__([scale],
                         {"beta_1": scale.beta_1, "beta_2": scale.beta_2, "epsilon": scale.epsilon},
                         learning_rate, record_statistics, None, dict(kwargs, name=name))
