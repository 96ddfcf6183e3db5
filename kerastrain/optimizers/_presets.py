"""The named optimizers as presets of `Chain`, in Keras's or PyTorch's convention.

``convention="keras"`` reproduces `keras.optimizers.<Name>` step for step;
``convention="torch"`` reproduces `torch.optim.<Name>` given the same
hyperparameter values: ε outside the square root, the learning rate applied
after the momentum buffer, and `weight_decay` as L2 added to the gradient
(decoupled for AdamW in both). Keras's own roundings (1 − βᵗ computed in
float32, Adam's ε-hat) are the presets' business: `KerasFirstMoment` and
`KerasAdamScale` below, subclasses of the generic transforms.
"""

from __future__ import annotations

import keras
from keras import ops

from kerastrain._validation import argument_error, check_in_range, check_one_of, check_positive
from kerastrain.optimizers import _hyper
from kerastrain.optimizers._chain import Chain
from kerastrain.optimizers._protocol import Scaled
from kerastrain.optimizers._scaling import (
    AdadeltaScale,
    AdagradScale,
    FirstMoment,
    NadamMoment,
    ScaleByRMS,
)
from kerastrain.optimizers._sgd import Momentum, ScaleByLearningRate, WeightDecay

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Nadam", "RMSprop"]

_register = keras.saving.register_keras_serializable(package="kerastrain")
_CONVENTIONS = ("keras", "torch")


def _check_convention(convention):
    return check_one_of("convention", convention, _CONVENTIONS,
                        'Use "keras" to match keras.optimizers or "torch" to match torch.optim.')


class Preset(Chain):
    """Base of the named presets: builds the chain, keeps the preset's own config."""

    coupled_weight_decay_in_torch = True

    def __init__(self, transforms, hyperparameters, learning_rate, record_statistics,
                 convention, kwargs):
        kwargs = dict(kwargs)
        weight_decay = kwargs.get("weight_decay")
        if weight_decay is not None:
            check_positive("weight_decay", weight_decay, allow_zero=True)
        self_coupled = (convention == "torch" and self.coupled_weight_decay_in_torch
                        and weight_decay is not None)
        if self_coupled:
            kwargs.pop("weight_decay")
            transforms = [WeightDecay(weight_decay, decoupled=False), *transforms]
        super().__init__(transforms, learning_rate=learning_rate,
                         record_statistics=record_statistics, **kwargs)
        self.convention = convention
        self._hyperparameters = dict(hyperparameters)
        if convention is not None:
            self._hyperparameters["convention"] = convention
        self._coupled_weight_decay = weight_decay if self_coupled else None

    def get_config(self):
        config = super().get_config()
        del config["transforms"]
        if self._coupled_weight_decay is not None:
            config["weight_decay"] = self._coupled_weight_decay
        config.update({k: _hyper.serialize(v) for k, v in self._hyperparameters.items()})
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # `get_config` serialized every schedule among the hyperparameters (momentum,
        # beta_1): every serialized object in the config is one, read back here.
        config = {key: keras.saving.deserialize_keras_object(value, custom_objects=custom_objects)
                  if isinstance(value, dict) else value for key, value in config.items()}
        return keras.optimizers.Optimizer.from_config.__func__(cls, config, custom_objects)


def _keras_one_minus_power(beta, step):
    """1 − βᵗ as keras.optimizers compute it: β in float32 raised to t.

    Off by up to ~1e-5 relative at small t for β = 0.999; the generic
    transforms compute it accurately (−expm1(t·ln β)).
    """
    return 1.0 - ops.power(beta, step)


@_register
class KerasFirstMoment(FirstMoment):
    """`FirstMoment` with 1 − β₁ᵗ rounded as `keras.optimizers.Adam` rounds it.

    The Keras-convention `Adam` and `AdamW` presets use it; arguments as `FirstMoment`.
    """

    def _one_minus_power(self, beta, step):
        return _keras_one_minus_power(beta, step)


@_register
class KerasAdamScale(ScaleByRMS):
    """`keras.optimizers.Adam`'s scale: u ← u·√(1−β₂ᵗ)/(√v + ε) ("ε-hat").

    ε is added to the uncorrected √v (Kingma & Ba's Algorithm 1 footnote form),
    and 1 − β₂ᵗ is rounded as Keras rounds it. The Keras-convention `Adam` and
    `AdamW` presets use it.

    Args:
        beta_2: in [0, 1), default 0.999. epsilon: ε > 0, default 1e-7.
        amsgrad: bool, default False.
    """

    hyperparameters = tuple(h for h in ScaleByRMS.hyperparameters
                            if h.name in ("beta_2", "epsilon", "amsgrad"))

    def __init__(self, beta_2=0.999, epsilon=1e-7, amsgrad=False):
        super().__init__(beta_2, epsilon, "outside", bias_correction=True, amsgrad=amsgrad)

    def _one_minus_power(self, beta, step):
        return _keras_one_minus_power(beta, step)

    def _divide(self, updates, second_moment, correction):
        return Scaled(updates / (ops.sqrt(second_moment) + self.epsilon), ops.sqrt(correction))

    @classmethod
    def from_legacy_config(cls, config, keras_rounding):
        """A `ScaleByRMS` config saved with ``keras_rounding`` or "outside_uncorrected"."""
        legacy = (keras_rounding and config.get("epsilon_placement") == "outside_uncorrected"
                  and config.get("bias_correction") and not config.get("centered"))
        if not legacy:
            raise argument_error(
                "epsilon_placement", 'be "inside" or "outside" (keras_rounding is gone)',
                config.get("epsilon_placement"),
                "Saved ScaleByRMS configs with keras_rounding or \"outside_uncorrected\" load "
                "only in keras.optimizers.Adam's combination (both, bias_correction=True, "
                "centered=False); use the Adam preset for Keras's numbers.")
        return cls(config["beta_2"], config["epsilon"], config.get("amsgrad", False))


def _momentum_transforms(momentum, nesterov, convention, dampening=0.0):
    if not _hyper.is_scheduled(momentum) and momentum == 0:
        return [ScaleByLearningRate()]
    trace = Momentum(momentum, nesterov, dampening)
    if convention == "keras":
        return [ScaleByLearningRate(), trace]
    return [trace, ScaleByLearningRate()]


@_register
class SGD(Preset):
    """Minibatch SGD with optional heavy-ball or Nesterov momentum.

    Keras: v ← μv − α g; θ ← θ + v (Nesterov: θ ← θ + μv − α g).
    PyTorch: b ← μb + (1 − d)g (b ← g at the first step); θ ← θ − α b
    (Nesterov: θ ← θ − α(g + μb)). Identical for a constant α and d = 0; they
    differ when α is scheduled.

    Args:
        learning_rate: float >= 0, schedule or callable; default 0.01.
        momentum: μ in [0, 1] (Keras's range), or a schedule / callable of the
            step; default 0.
        nesterov: bool, default False.
        dampening: d in [0, 1], default 0: PyTorch's, so only with
            ``convention="torch"``, and not with Nesterov.
        convention: "keras" (default) or "torch".
        record_statistics: bool, default True.
        **kwargs: base optimizer arguments.

    Example: ``model.compile(optimizer=SGD(0.1, momentum=0.9, nesterov=True), loss="mse")``

    Reference: Sutskever et al. 2013 (momentum, Nesterov).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, dampening=0.0,
                 convention="keras", record_statistics=True, name=None, **kwargs):
        _check_convention(convention)
        momentum = _hyper.check_momentum("momentum", momentum)
        nesterov = _hyper.check_bool("nesterov", nesterov)
        dampening = check_in_range("dampening", dampening, 0.0, 1.0)
        if dampening and convention != "torch":
            raise argument_error(
                "dampening", 'be 0 with convention="keras"', dampening,
                'Dampening is torch.optim.SGD\'s argument: pass convention="torch".')
        super().__init__(_momentum_transforms(momentum, nesterov, convention, dampening),
                         {"momentum": momentum, "nesterov": nesterov, "dampening": dampening},
                         learning_rate, record_statistics, convention, dict(kwargs, name=name))


@_register
class Adagrad(Preset):
    """Adagrad, optionally with a periodic accumulator reset.

    G ← G + g²; θ ← θ − α_t g / √(G + ε) (Keras; PyTorch: √G + ε). With
    `reset_interval=k`, G restarts from `initial_accumulator_value` every k steps.

    Args:
        learning_rate: default 0.001 (PyTorch's default is 0.01).
        initial_accumulator_value: G₀ >= 0, default 0.1 (PyTorch's default is 0).
        epsilon: ε > 0, default 1e-7 (PyTorch's default is 1e-10).
        reset_interval: None (default) or an integer >= 1.
        lr_decay: >= 0, default 0: α_t = α / (1 + lr_decay · (t − 1)) at step t,
            PyTorch Adagrad's ``lr_decay`` (either convention).
        convention, record_statistics, **kwargs: as for `SGD`.

    Example: ``Adagrad(0.05, reset_interval=1000)``

    Reference: Duchi et al. 2011.
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 reset_interval=None, lr_decay=0.0, convention="keras",
                 record_statistics=True, name=None, **kwargs):
        _check_convention(convention)
        placement = "inside" if convention == "keras" else "outside"
        scale = AdagradScale(initial_accumulator_value, epsilon, placement, reset_interval)
        rate = ScaleByLearningRate(lr_decay)
        super().__init__([scale, rate],
                         {"initial_accumulator_value": scale.initial_accumulator_value,
                          "epsilon": scale.epsilon, "reset_interval": scale.reset_interval,
                          "lr_decay": rate.lr_decay},
                         learning_rate, record_statistics, convention, dict(kwargs, name=name))


@_register
class Adadelta(Preset):
    """Adadelta: the learning rate replaced by a running RMS of past updates.

    G ← ρG + (1−ρ)g²; d = √(D+ε)/√(G+ε)·g; D ← ρD + (1−ρ)d²; θ ← θ − α d.
    Keras and PyTorch use the same rule (their defaults differ: α = 0.001 vs
    1.0, ρ = 0.95 vs 0.9, ε = 1e-7 vs 1e-6).

    Args:
        learning_rate: default 0.001. rho: in [0, 1), default 0.95. epsilon: default 1e-7.
        convention, record_statistics, **kwargs: as for `SGD`.

    Reference: Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method".
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, convention="keras",
                 record_statistics=True, name=None, **kwargs):
        _check_convention(convention)
        scale = AdadeltaScale(rho, epsilon)
        super().__init__([scale, ScaleByLearningRate()], {"rho": scale.rho, "epsilon": scale.epsilon},
                         learning_rate, record_statistics, convention, dict(kwargs, name=name))


@_register
class RMSprop(Preset):
    """RMSprop, optionally centered and with momentum.

    v ← ρv + (1−ρ)g²; Keras: b ← μb + α g/√(v + ε), θ ← θ − b;
    PyTorch: b ← μb + g/(√v + ε), θ ← θ − α b. Centered: v − E[g]² in place of v.

    Args:
        learning_rate: default 0.001. rho: in [0, 1), default 0.9 (PyTorch's
            `alpha`, default 0.99). momentum: in [0, 1) or a schedule, default 0.
        epsilon: default 1e-7. centered: bool, default False.
        convention, record_statistics, **kwargs: as for `SGD`.

    Reference: Hinton, Coursera lecture 6e; Graves 2013 (centered).
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 convention="keras", record_statistics=True, name=None, **kwargs):
        _check_convention(convention)
        placement = "inside" if convention == "keras" else "outside"
        scale = ScaleByRMS(_hyper.check_unit("rho", rho), epsilon, placement, centered=centered)
        momentum = _hyper.check_beta("momentum", momentum)
        super().__init__([scale, *_momentum_transforms(momentum, False, convention)],
                         {"rho": scale.beta_2, "momentum": momentum, "epsilon": scale.epsilon,
                          "centered": scale.centered},
                         learning_rate, record_statistics, convention, dict(kwargs, name=name))


def _adam_transforms(beta_1, beta_2, epsilon, amsgrad, convention):
    if convention == "keras":
        return [KerasFirstMoment(beta_1), KerasAdamScale(beta_2, epsilon, amsgrad)]
    return [FirstMoment(beta_1),
            ScaleByRMS(beta_2, epsilon, "outside", bias_correction=True, amsgrad=amsgrad)]


@_register
class Adam(Preset):
    """Adam (+ AMSGrad): momentum and RMS scaling with bias correction.

    m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; m̂ = m/(1−∏β₁), v̂ = v/(1−β₂ᵗ).
    Keras: θ ← θ − α m̂ √(1−β₂ᵗ)/(√v + ε); PyTorch: θ ← θ − α m̂/(√v̂ + ε).

    Args:
        learning_rate: default 0.001. beta_1: in [0, 1) or a schedule / callable
            of the step, default 0.9. beta_2: default 0.999. epsilon: default
            1e-7 (PyTorch's 1e-8). amsgrad: bool, default False.
        convention, record_statistics, **kwargs: as for `SGD`.

    Reference: Kingma & Ba 2015; Reddi et al. 2018 (AMSGrad).
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, convention="keras", record_statistics=True, name=None,
                 **kwargs):
        _check_convention(convention)
        transforms = _adam_transforms(beta_1, beta_2, epsilon, amsgrad, convention)
        super().__init__(transforms, {"beta_1": transforms[0].beta_1, "beta_2": transforms[1].beta_2,
                                      "epsilon": transforms[1].epsilon, "amsgrad": amsgrad},
                         learning_rate, record_statistics, convention, dict(kwargs, name=name))


@_register
class AdamW(Preset):
    """Adam with decoupled weight decay: θ ← θ − α(Adam update + λθ).

    Args:
        learning_rate: default 0.001. weight_decay: λ >= 0, default 0.004
            (PyTorch's 0.01). beta_1, beta_2, epsilon, amsgrad: as for `Adam`.
        convention, record_statistics, **kwargs: as for `SGD`.

    Reference: Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization".
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, convention="keras", record_statistics=True,
                 name=None, **kwargs):
        _check_convention(convention)
        if weight_decay is None:  # Keras's AdamW raises ValueError here, with this text
            raise argument_error("weight_decay", "be a float", weight_decay,
                                 "AdamW is Adam with weight decay: for none use Adam.")
        decay = WeightDecay(weight_decay)
        transforms = _adam_transforms(beta_1, beta_2, epsilon, amsgrad, convention)
        super().__init__([*transforms, decay, ScaleByLearningRate()],
                         {"weight_decay": decay.weight_decay, "beta_1": transforms[0].beta_1,
                          "beta_2": transforms[1].beta_2, "epsilon": transforms[1].epsilon,
                          "amsgrad": amsgrad},
                         learning_rate, record_statistics, convention, dict(kwargs, name=name))
        # Readable as Keras's `AdamW.weight_decay`; the `WeightDecay` transform applies
        # it, so the base optimizer's own weight decay step is skipped (see below).
        self.weight_decay = decay.weight_decay

    def _apply_weight_decay(self, variables):
        """The chain's `WeightDecay` transform decays the weights, not the base class."""

    def _base_weight_decay(self):
        return None


@_register
class Nadam(Preset):
    """Nesterov-accelerated Adam with the μ_t momentum schedule.

    μ_t = β₁(1 − ½·0.96^(tψ)); θ ← θ − α (μ_{t+1} m/(1−∏μ) + (1−μ_t) g/(1−∏μ)) / (√v̂ + ε).
    Keras uses ψ = 1, PyTorch ψ = `momentum_decay` = 0.004.

    Args:
        learning_rate: default 0.001. beta_1: in [0, 1) or a schedule, default 0.9.
        beta_2: default 0.999. epsilon: default 1e-7.
        momentum_decay: ψ > 0; default None = the convention's (1.0 keras, 0.004 torch).
        convention, record_statistics, **kwargs: as for `SGD`.

    Reference: Dozat 2016, "Incorporating Nesterov Momentum into Adam".
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 momentum_decay=None, convention="keras", record_statistics=True, name=None,
                 **kwargs):
        _check_convention(convention)
        decay = momentum_decay
        if decay is None:
            decay = 1.0 if convention == "keras" else 0.004
        moment = NadamMoment(beta_1, decay)
        scale = ScaleByRMS(beta_2, epsilon, "outside", bias_correction=True)
        super().__init__([moment, scale],
                         {"beta_1": moment.beta_1, "beta_2": scale.beta_2, "epsilon": scale.epsilon,
                          "momentum_decay": momentum_decay},
                         learning_rate, record_statistics, convention, dict(kwargs, name=name))
